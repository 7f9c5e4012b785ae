//! A graph of permutation groups as the search reads it ([`Structure`];
//! docs/definition.md#graph-canonical-labels).
//!
//! Vertices are the units of every group that may be renamed (one cell per group), and one
//! vertex per attention head of each head set (one cell per head set), joined to the head's
//! units in every group of the set: a renaming that keeps the head vertices' connections moves
//! units only within heads and heads as blocks, the same way in every group of the set. Units of
//! fixed groups (input groups; output groups when the outputs are fixed) keep their labels: they
//! are not vertices, but their connections count (as constants) in colours, twins, checks and
//! forms. Each connection of a writer is an edge from the unit it reads to the unit it writes,
//! tagged by the writer, the read and the position; the tags are numbered from the graph's
//! structure alone (writers, reads and widths), which both networks of a pair share.
//!
//! At a leaf the units of a head-set group are ordered head block by head block, the heads in
//! their canonical order, and by colour within a head; the form is every writer's layer with its
//! rows and columns renamed, writer by writer.

use super::*;
use crate::graph::Graph;
use crate::refine::{
    combine, combine_keyed, key, mix, multiset, until_stable, FIXED, FROM, HEAD, INPUT, LAYER, TO,
};

/// One vertex's connections, as (other vertex, tag).
type Edges<'a> = &'a [(u32, u32)];

/// Connections of every vertex (free or fixed, numbered as in [`GraphStructure`]), each
/// vertex's list sorted: `items[ptr[x]..ptr[x + 1]]` as (other vertex, tag).
struct Adjacency {
    ptr: Vec<usize>,
    items: Vec<(u32, u32)>,
}

impl Adjacency {
    /// From `(vertex, other, tag)` triples (`(other, vertex, tag)` when `reversed`, which
    /// spares a reversed copy of the connections), for `n` vertices: placed by vertex (a
    /// counting sort), then each vertex's short list sorted (most come sorted already).
    fn new(n: usize, edges: &[(u32, u32, u32)], reversed: bool) -> Adjacency {
        let orient = |&(x, y, t): &(u32, u32, u32)| if reversed { (y, x, t) } else { (x, y, t) };
        let mut ptr = vec![0usize; n + 1];
        for e in edges {
            ptr[orient(e).0 as usize + 1] += 1;
        }
        for x in 0..n {
            ptr[x + 1] += ptr[x];
        }
        let mut next = ptr.clone();
        let mut items = vec![(0u32, 0u32); edges.len()];
        for e in edges {
            let (x, y, t) = orient(e);
            let slot = &mut next[x as usize];
            items[*slot] = (y, t);
            *slot += 1;
        }
        for x in 0..n {
            let list = &mut items[ptr[x]..ptr[x + 1]];
            if !list.is_sorted() {
                list.sort_unstable();
            }
        }
        Adjacency { ptr, items }
    }

    fn of(&self, x: usize) -> &[(u32, u32)] {
        &self.items[self.ptr[x]..self.ptr[x + 1]]
    }
}

/// What a tag stands for: a position within a read of `width` columns per unit, the place of
/// its (writer, read) among those writing into its group (or of its group in a head set), and
/// what it adds to a connection's hash.
struct Tag {
    position: usize,
    width: usize,
    place: u64,
    hash: u64,
}

/// A graph's units and heads as cells of vertices. Free vertices are numbered across cells
/// (`offsets`), the fixed units after them from `n_free` on (`fixed_base[g] + u`).
pub(crate) struct GraphStructure<'g> {
    graph: &'g Graph,
    /// The cell of each group whose units may be renamed (`None` for fixed groups), the group
    /// of each such cell (the group cells come first, in group order, then one cell per head
    /// set).
    cell_of_group: Vec<Option<usize>>,
    group_of_cell: Vec<usize>,
    /// The head cell of each group with heads, and its head size.
    heads_of_group: Vec<Option<(usize, usize)>>,
    offsets: Vec<usize>,
    n_free: usize,
    fixed_base: Vec<usize>,
    /// The colour of each fixed unit (`id - n_free`): its group and label.
    fixed_colours: Vec<u64>,
    /// Incoming and outgoing connections of every vertex, free and fixed.
    ins: Adjacency,
    outs: Adjacency,
    /// What each tag adds to a connection's hash: its position, and the place of its (writer,
    /// read) among those writing into the destination's group, `position + (place << 32)` (a
    /// head joint: its group's place in the set, with the top bit set). On a chain (one writer
    /// and one read per group) this is the position alone, as `crate::refine` hashes it.
    /// Kept as its [`key`], the part of `combine` that does not depend on the colour (a round
    /// combines it with one colour per connection).
    tag_key: Vec<u64>,
    /// For each incoming connection (aligned with `ins.items`) from a fixed unit, its item in
    /// the multiset: the unit's column in its read, with the tag's place, hashed as a chain
    /// hashes its input features (0 for connections from free vertices).
    fixed_items: Vec<u64>,
}

impl<'g> GraphStructure<'g> {
    pub(crate) fn new(graph: &'g Graph) -> GraphStructure<'g> {
        let groups = graph.groups();
        let mut cell_of_group = vec![None; groups.len()];
        let mut group_of_cell = Vec::new();
        let mut sizes = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            if !graph.is_fixed(g) {
                cell_of_group[g] = Some(group_of_cell.len());
                group_of_cell.push(g);
                sizes.push(group.size);
            }
        }
        // Head sets: groups sharing a `head_set`, or a group with heads alone; one cell each,
        // in the order of their first group.
        let mut heads_of_group = vec![None; groups.len()];
        let mut sets: Vec<(Option<usize>, usize)> = Vec::new(); // (head_set, cell)
        for (g, group) in groups.iter().enumerate() {
            if graph.is_fixed(g) || (group.heads <= 1 && group.head_set.is_none()) {
                continue;
            }
            let known = group
                .head_set
                .and_then(|s| sets.iter().find(|&&(set, _)| set == Some(s)));
            let cell = match known {
                Some(&(_, cell)) => cell,
                None => {
                    let cell = sizes.len();
                    sizes.push(group.heads);
                    sets.push((group.head_set, cell));
                    cell
                }
            };
            heads_of_group[g] = Some((cell, group.size / group.heads));
        }
        let mut offsets = vec![0];
        for size in &sizes {
            offsets.push(offsets[offsets.len() - 1] + size);
        }
        let n_free = offsets[sizes.len()];
        let mut fixed_base = vec![usize::MAX; groups.len()];
        let mut fixed_colours = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            if graph.is_fixed(g) {
                fixed_base[g] = n_free + fixed_colours.len();
                fixed_colours
                    .extend((0..group.size as u64).map(|u| combine(combine(FIXED, g as u64), u)));
            }
        }
        let mut structure = GraphStructure {
            graph,
            cell_of_group,
            group_of_cell,
            heads_of_group,
            offsets,
            n_free,
            fixed_base,
            fixed_colours,
            ins: Adjacency::new(0, &[], false),
            outs: Adjacency::new(0, &[], false),
            tag_key: Vec::new(),
            fixed_items: Vec::new(),
        };
        let (edges, tags) = structure.edges();
        let n = n_free + structure.fixed_colours.len();
        structure.outs = Adjacency::new(n, &edges, false);
        structure.ins = Adjacency::new(n, &edges, true);
        drop(edges);
        structure.tag_key = tags.iter().map(|t| key(t.hash)).collect();
        // The fixed units' column in their read: unit * width + position.
        let mut fixed_unit = vec![0usize; structure.fixed_colours.len()];
        for (g, group) in groups.iter().enumerate() {
            if graph.is_fixed(g) {
                let base = structure.fixed_base[g] - n_free;
                for (u, slot) in fixed_unit[base..base + group.size].iter_mut().enumerate() {
                    *slot = u;
                }
            }
        }
        structure.fixed_items = structure
            .ins
            .items
            .iter()
            .map(|&(y, t)| match (y as usize).checked_sub(n_free) {
                Some(f) => {
                    let tag = &tags[t as usize];
                    let column = (fixed_unit[f] * tag.width + tag.position) as u64;
                    mix(combine(INPUT, column + (tag.place << 32)))
                }
                None => 0,
            })
            .collect();
        structure
    }

    /// The vertex of unit `u` of group `g`.
    fn vertex(&self, g: usize, u: usize) -> u32 {
        match self.cell_of_group[g] {
            Some(c) => (self.offsets[c] + u) as u32,
            None => (self.fixed_base[g] + u) as u32,
        }
    }

    /// Every connection as (source, destination, tag), and the tags: the writers' connections
    /// (a tag per writer, read and position, numbered read by read across writers), then each
    /// head vertex to its units (a tag per group of a head set, after the writers').
    fn edges(&self) -> (Vec<(u32, u32, u32)>, Vec<Tag>) {
        let groups = self.graph.groups();
        let heads: usize = (self.heads_of_group.iter().zip(groups))
            .filter(|(h, _)| h.is_some())
            .map(|(_, group)| group.size)
            .sum();
        let writes: usize = self
            .graph
            .writers()
            .iter()
            .map(|w| w.layer.n_connections())
            .sum();
        let mut edges = Vec::with_capacity(writes + heads);
        let mut tags = Vec::new();
        let mut places = vec![0u64; groups.len()]; // (writer, read) pairs into each group
        for writer in self.graph.writers() {
            let layer = &writer.layer;
            let mut reads = Vec::with_capacity(writer.reads.len()); // (first column, end, base)
            let mut column = 0usize;
            for read in &writer.reads {
                let end = column + groups[read.group].size * read.width;
                reads.push((column, end, tags.len(), read));
                let place = places[writer.group];
                places[writer.group] += 1;
                tags.extend((0..read.width).map(|position| Tag {
                    position,
                    width: read.width,
                    place,
                    hash: position as u64 + (place << 32),
                }));
                column = end;
            }
            for u in 0..layer.n_out() {
                let to = self.vertex(writer.group, u);
                let mut at = 0;
                for &r in layer.inputs(u) {
                    let r = r as usize;
                    while reads[at].1 <= r {
                        at += 1;
                    }
                    let (first, _, base, read) = reads[at];
                    let (v, p) = ((r - first) / read.width, (r - first) % read.width);
                    edges.push((self.vertex(read.group, v), to, (base + p) as u32));
                }
            }
        }
        let mut rank_in_set: Vec<u64> = vec![0; self.offsets.len()];
        for (g, heads) in self.heads_of_group.iter().enumerate() {
            let Some((cell, dim)) = *heads else { continue };
            let tag = tags.len() as u32;
            tags.push(Tag {
                position: 0,
                width: 1,
                place: rank_in_set[cell],
                hash: (1 << 63) | rank_in_set[cell],
            });
            rank_in_set[cell] += 1;
            for u in 0..groups[g].size {
                let head = (self.offsets[cell] + u / dim) as u32;
                edges.push((head, self.vertex(g, u), tag));
            }
        }
        (edges, tags)
    }

    /// Every vertex's starting colour: its group's (by its cell, as a chain's neuron starts
    /// with its layer's), or its head set's.
    pub(crate) fn initial(&self) -> Vec<Vec<u64>> {
        (0..self.offsets.len() - 1)
            .map(|c| {
                let size = self.offsets[c + 1] - self.offsets[c];
                let colour = match self.group_of_cell.get(c) {
                    Some(_) => combine(LAYER, c as u64),
                    None => combine(HEAD, (c - self.group_of_cell.len()) as u64),
                };
                vec![colour; size]
            })
            .collect()
    }

    /// One round of refinement: each vertex's colour combined with the multisets of its
    /// incoming and its outgoing connections, each as (the other end's colour, tag). On a
    /// chain this is `crate::refine`'s round, hash for hash.
    pub(crate) fn round(&self, current: &[Vec<u64>]) -> Vec<Vec<u64>> {
        let mut flat: Vec<u64> = current.concat();
        flat.extend_from_slice(&self.fixed_colours);
        let item = |y: u32, t: u32| mix(combine_keyed(flat[y as usize], self.tag_key[t as usize]));
        let from_sum = |x: usize| {
            let span = self.ins.ptr[x]..self.ins.ptr[x + 1];
            self.ins.items[span.clone()]
                .iter()
                .zip(&self.fixed_items[span])
                .fold(0u64, |s, (&(y, t), &fixed)| {
                    let it = if (y as usize) < self.n_free {
                        item(y, t)
                    } else {
                        fixed
                    };
                    s.wrapping_add(it)
                })
        };
        let to_sum = |x: usize| {
            self.outs
                .of(x)
                .iter()
                .fold(0u64, |s, &(y, t)| s.wrapping_add(item(y, t)))
        };
        current
            .iter()
            .enumerate()
            .map(|(c, colours)| {
                colours
                    .iter()
                    .enumerate()
                    .map(|(i, &colour)| {
                        let x = self.offsets[c] + i;
                        let (ins, outs) = (self.ins.of(x).len(), self.outs.of(x).len());
                        let from = multiset(FROM, from_sum(x), ins);
                        let to = multiset(TO, to_sum(x), outs);
                        combine(combine(colour, from), to)
                    })
                    .collect()
            })
            .collect()
    }

    /// The colours over `rounds` rounds from the starting ones.
    pub(crate) fn history(&self, rounds: usize) -> Vec<Vec<Vec<u64>>> {
        let mut history = Vec::with_capacity(rounds + 1);
        history.push(self.initial());
        for t in 0..rounds {
            let next = self.round(&history[t]);
            history.push(next);
        }
        history
    }

    /// The cell of group `g`'s units (`None`: a fixed group).
    pub(crate) fn cell_of_group(&self, g: usize) -> Option<usize> {
        self.cell_of_group[g]
    }

    /// The cell of the heads of group `g`'s head set (`None`: a group without heads).
    pub(crate) fn head_cell_of_group(&self, g: usize) -> Option<usize> {
        self.heads_of_group[g].map(|(cell, _)| cell)
    }

    /// The graph with every free group's units in `order` (the cells of [`Self::cell_of_group`]).
    pub(crate) fn relabelled_graph(&self, form: Vec<Csc>) -> Result<Graph> {
        let writers = self
            .graph
            .writers()
            .iter()
            .zip(form)
            .map(|(w, (indptr, indices))| {
                let mut writer = w.clone();
                writer.layer =
                    Layer::from_valid_csc(w.layer.n_in(), w.layer.group(), indptr, indices);
                writer
            })
            .collect();
        Graph::new(
            self.graph.groups().to_vec(),
            writers,
            self.graph.fixed_outputs(),
        )
    }

    /// The parts of a relabelled graph's writers.
    fn parts<'l>(&'l self, form: &'l [Csc]) -> Vec<Parts<'l>> {
        self.graph
            .writers()
            .iter()
            .zip(form)
            .map(|(w, (indptr, indices))| {
                (w.layer.n_in(), w.layer.group(), &indptr[..], &indices[..])
            })
            .collect()
    }
}

impl Structure for GraphStructure<'_> {
    /// The connections live in the structure itself.
    type Links = ();
    /// Every writer's layer relabelled, writer by writer.
    type Form = Vec<Csc>;

    fn cell_sizes(&self) -> Vec<usize> {
        self.offsets.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn cell_name(&self, k: usize) -> String {
        match self.group_of_cell.get(k) {
            Some(g) => format!("group {g}"),
            None => {
                let g = self
                    .heads_of_group
                    .iter()
                    .position(|h| h.is_some_and(|h| h.0 == k));
                format!("the heads of group {}", g.unwrap_or(0))
            }
        }
    }

    fn refine_to_stable(&self, colours: &mut Vec<Vec<u64>>) {
        until_stable(colours, |current| self.round(current));
    }

    fn twin_classes(&self, colours: &[Vec<u64>]) -> Vec<Vec<usize>> {
        colours
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                let mut twin: Vec<usize> = (0..cell.len()).collect();
                let mut by_colour: Vec<(u64, usize)> =
                    cell.iter().enumerate().map(|(i, &c)| (c, i)).collect();
                by_colour.sort_unstable();
                for class in by_colour
                    .chunk_by(|x, y| x.0 == y.0)
                    .filter(|c| c.len() > 1)
                {
                    let mut first: HashMap<(Edges, Edges), usize> = HashMap::new();
                    for &(_, i) in class {
                        let x = self.offsets[c] + i;
                        twin[i] = *first.entry((self.ins.of(x), self.outs.of(x))).or_insert(i);
                    }
                }
                twin
            })
            .collect()
    }

    fn links(&self) -> Self::Links {}

    /// Tags: the connection's tag * 2 + direction (0: incoming, 1: outgoing); fixed units left
    /// out.
    fn neighbours<'n>(
        &'n self,
        _links: &'n (),
        offsets: &'n [usize],
        k: usize,
        i: usize,
    ) -> impl Iterator<Item = (u32, u32)> + 'n {
        let x = offsets[k] + i;
        let free = self.n_free as u32;
        let ins = self.ins.of(x).iter().map(|&(y, t)| (y, t * 2));
        let outs = self.outs.of(x).iter().map(|&(y, t)| (y, t * 2 + 1));
        ins.chain(outs).filter(move |&(y, _)| y < free)
    }

    /// Every vertex `gamma` moves, and every vertex (fixed units included) one of them
    /// connects to, has as incoming connections the images of its own.
    fn is_automorphism(
        &self,
        _links: &(),
        offsets: &[usize],
        image: &mut [u32],
        gamma: &Permutation,
    ) -> bool {
        let cell = |v: usize| offsets.partition_point(|&o| o <= v);
        for &(v, to) in gamma {
            image[v as usize] = to;
        }
        let mut check: Vec<u32> = Vec::new();
        for &(v, _) in gamma {
            check.push(v);
            check.extend(self.outs.of(v as usize).iter().map(|&(y, _)| y));
        }
        check.sort_unstable();
        check.dedup();
        let free = self.n_free;
        let img = |y: u32| {
            if (y as usize) < free {
                image[y as usize]
            } else {
                y
            }
        };
        let mut mapped: Vec<(u32, u32)> = Vec::new();
        let holds = check.iter().all(|&y| {
            let to = img(y);
            if (y as usize) < free && cell(y as usize) != cell(to as usize) {
                return false;
            }
            mapped.clear();
            mapped.extend(self.ins.of(y as usize).iter().map(|&(s, t)| (img(s), t)));
            mapped.sort_unstable();
            mapped == self.ins.of(to as usize)
        });
        for &(v, _) in gamma {
            image[v as usize] = v;
        }
        holds
    }

    /// By colour; a head-set group's units head block by head block, the heads in their
    /// order.
    fn leaf_order(&self, colours: &[Vec<u64>]) -> Vec<Vec<usize>> {
        let mut order: Vec<Vec<usize>> = colours.iter().map(|c| chain::by_colour(c)).collect();
        for (g, heads) in self.heads_of_group.iter().enumerate() {
            let (Some((head_cell, dim)), Some(c)) = (*heads, self.cell_of_group[g]) else {
                continue;
            };
            let head_rank = &ranks(&order[head_cell..=head_cell])[0];
            let mut keyed: Vec<(Idx, u64, usize)> = (0..colours[c].len())
                .map(|u| (head_rank[u / dim], colours[c][u], u))
                .collect();
            keyed.sort_unstable();
            order[c] = keyed.into_iter().map(|(_, _, u)| u).collect();
        }
        order
    }

    fn relabel(&self, order: &[Vec<usize>]) -> Self::Form {
        let rank = ranks(order);
        let groups = self.graph.groups();
        self.graph
            .writers()
            .iter()
            .map(|writer| {
                let layer = &writer.layer;
                let mut columns: Vec<Idx> = Vec::with_capacity(layer.n_in());
                for read in &writer.reads {
                    let (start, width) = (columns.len(), read.width);
                    let size = groups[read.group].size;
                    match self.cell_of_group[read.group] {
                        Some(c) => columns.extend((0..size * width).map(|x| {
                            (start + rank[c][x / width] as usize * width + x % width) as Idx
                        })),
                        None => columns.extend((start..start + size * width).map(|x| x as Idx)),
                    }
                }
                let rows: Vec<usize> = match self.cell_of_group[writer.group] {
                    Some(c) => order[c].clone(),
                    None => (0..layer.n_out()).collect(),
                };
                let mut indptr = Vec::with_capacity(rows.len() + 1);
                indptr.push(0);
                for &u in &rows {
                    indptr.push(indptr[indptr.len() - 1] + layer.inputs(u).len());
                }
                let mut indices = vec![0 as Idx; layer.n_connections()];
                let mut sorter = Sorter::new(layer.n_in());
                for (new, &u) in rows.iter().enumerate() {
                    let out = &mut indices[indptr[new]..indptr[new + 1]];
                    sorter.sort_into(layer.inputs(u).iter().map(|&r| columns[r as usize]), out);
                }
                (indptr, indices)
            })
            .collect()
    }

    fn cmp_forms(&self, a: &Self::Form, b: &Self::Form) -> Ordering {
        let (mine, theirs) = (self.parts(a), self.parts(b));
        form(&mine).cmp(form(&theirs))
    }
}

/// A graph in canonical order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledGraph {
    /// `order[c][r]`: the vertex of cell `c` whose canonical label is `r` (cells as
    /// [`GraphStructure`] numbers them: free groups, then head sets).
    pub order: Vec<Vec<usize>>,
    /// The graph with every free group's units renamed to their canonical labels.
    pub graph: Graph,
}

/// The canonical labelling of `structure`'s graph, from colours `start` that depend on
/// structure alone.
pub(crate) fn label_graph(
    structure: &GraphStructure,
    start: Vec<Vec<u64>>,
    cancel: &Cancel,
) -> Result<LabelledGraph> {
    let ((order, form), _) = search_leaf(structure, start, cancel, Pruning::Automorphisms)?;
    let graph = structure.relabelled_graph(form)?;
    Ok(LabelledGraph { order, graph })
}

impl LabelledGraph {
    /// How this graph's canonical form compares with `other`'s (graphs of one structure): equal
    /// exactly when they are relabelled copies of each other.
    pub fn cmp_form(&self, other: &LabelledGraph) -> Ordering {
        let (mine, theirs) = (graph_parts(&self.graph), graph_parts(&other.graph));
        form(&mine).cmp(form(&theirs))
    }
}

/// A graph's writers as the canonical form reads them.
fn graph_parts(graph: &Graph) -> Vec<Parts<'_>> {
    graph
        .writers()
        .iter()
        .map(|w| {
            let l = &w.layer;
            (l.n_in(), l.group(), l.indptr(), l.indices())
        })
        .collect()
}
