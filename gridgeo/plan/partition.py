"""Contiguous, balanced partitions of a graph of building blocks.

A grid is split (or refined into micro-grids) by cutting a spanning tree of
its unit adjacency graph: removing one tree edge leaves exactly two connected
pieces, so both parts are contiguous by construction, and the subtree sums of
one depth-first pass give every possible cut's balance at once. This is the
tree-cut idea of GerryChain's ``recursive_tree_part``, made deterministic:
the first tree is the minimum spanning tree of centroid distances (short
edges, so compact parts), the others perturb those lengths with a seeded
generator, and the most balanced cut of all trees wins. k parts come from
recursive bisection with targets in proportion (k//2 : k - k//2).

networkx supplies the spanning tree and the traversal; only the subtree-sum
bookkeeping, which networkx does not offer, is written here.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

__all__ = ["bisect", "partition"]


def bisect(
    graph: nx.Graph,
    weight: dict,
    xy: dict,
    share: float = 0.5,
    *,
    tries: int = 8,
    seed: int = 0,
) -> tuple[set, set]:
    """Two contiguous parts of a connected ``graph``, the first holding ``share`` of the weight.

    Parameters
    ----------
    graph : networkx.Graph
        Connected graph of the blocks to divide (at least two nodes).
    weight : dict
        Node → non-negative weight (households).
    xy : dict
        Node → (x, y) in metres: edge lengths of the spanning trees.
    share : float
        Target share of the total weight in the first part.
    tries : int
        Spanning trees tried; the most balanced cut of all wins.
    seed : int
        Seeds the perturbed trees, so the result is reproducible.

    Returns
    -------
    (set, set)
        The two parts; both non-empty and connected in ``graph``.

    Examples
    --------
    >>> g = nx.path_graph(4)
    >>> parts = bisect(g, {0: 3, 1: 1, 2: 1, 3: 1}, {i: (i, 0) for i in g}, share=0.5)
    >>> sorted(sorted(p) for p in parts)
    [[0], [1, 2, 3]]
    """
    nodes = list(graph)
    total = float(sum(weight[n] for n in nodes))
    target = share * total
    rng = np.random.default_rng(seed)
    best: tuple[float, set] | None = None
    for attempt in range(max(tries, 1)):
        for a, b, data in graph.edges(data=True):
            length = float(np.hypot(xy[a][0] - xy[b][0], xy[a][1] - xy[b][1]))
            data["_length"] = length * (1.0 if attempt == 0 else rng.uniform(1.0, 2.0))
        tree = nx.minimum_spanning_tree(graph, weight="_length")
        root = nodes[0]
        parent = dict(nx.dfs_predecessors(tree, root))
        below = {n: float(weight[n]) for n in nodes}
        for node in nx.dfs_postorder_nodes(tree, root):
            if node != root:
                below[parent[node]] += below[node]
        for node in nodes:
            if node == root:
                continue
            # the subtree under ``node`` may be either part
            for side, value in ((True, below[node]), (False, total - below[node])):
                miss = abs(value - target)
                if best is None or miss < best[0] - 1e-9:
                    best = (miss, (node, parent[node], side, attempt))
        if best is not None and best[0] == 0:
            break
    for _a, _b, data in graph.edges(data=True):
        data.pop("_length", None)
    assert best is not None
    return _cut(graph, xy, best[1], seed)


def _cut(graph: nx.Graph, xy: dict, choice: tuple, seed: int) -> tuple[set, set]:
    """Rebuild the chosen tree and return the two sides of the chosen edge."""
    node, up, side, attempt = choice
    rng = np.random.default_rng(seed)
    for k in range(attempt + 1):
        for a, b, data in graph.edges(data=True):
            length = float(np.hypot(xy[a][0] - xy[b][0], xy[a][1] - xy[b][1]))
            data["_length"] = length * (1.0 if k == 0 else rng.uniform(1.0, 2.0))
    tree = nx.minimum_spanning_tree(graph, weight="_length")
    for _a, _b, data in graph.edges(data=True):
        data.pop("_length", None)
    tree.remove_edge(node, up)
    sub = nx.node_connected_component(tree, node)
    rest = set(graph) - sub
    return (sub, rest) if side else (rest, sub)


def partition(
    graph: nx.Graph, weight: dict, xy: dict, parts: int, *, tries: int = 8, seed: int = 0
) -> list[set]:
    """``parts`` contiguous parts of a connected ``graph`` with balanced weight.

    Recursive :func:`bisect`: a piece that must become ``k`` parts is cut
    ``k // 2 : k - k // 2``.

    Examples
    --------
    >>> g = nx.grid_2d_graph(4, 3)
    >>> out = partition(g, {n: 1 for n in g}, {n: n for n in g}, 3)
    >>> sorted(len(p) for p in out), all(nx.is_connected(g.subgraph(p)) for p in out)
    ([4, 4, 4], True)
    """
    if parts < 1:
        raise ValueError(f"parts must be at least 1, not {parts}")
    if parts == 1:
        return [set(graph)]
    if graph.number_of_nodes() < parts:
        raise ValueError(f"{graph.number_of_nodes()} blocks cannot make {parts} parts")
    left = parts // 2
    a, b = bisect(graph, weight, xy, left / parts, tries=tries, seed=seed)
    if len(a) < left or len(b) < parts - left:
        # too few blocks on one side for its parts: balance by count instead
        a, b = bisect(graph, dict.fromkeys(graph, 1), xy, left / parts, tries=tries, seed=seed)
    return partition(graph.subgraph(a).copy(), weight, xy, left, tries=tries, seed=seed) + (
        partition(graph.subgraph(b).copy(), weight, xy, parts - left, tries=tries, seed=seed)
    )
