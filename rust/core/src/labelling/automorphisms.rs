//! Automorphisms from leaves of equal form and from swaps of isomorphic pieces, checked
//! connection by connection before use.

use super::*;

/// What the automorphism search reads and keeps: vertices numbered across cells (cell `k`'s
/// vertex `i` is `offsets[k] + i`), the structure's links ([`Structure::Links`]), the pieces of
/// the latest partition, and scratch space.
pub(super) struct AutomorphismState<S: Structure> {
    pub(super) offsets: Vec<usize>,
    pub(super) links: S::Links,
    /// The level of the current path at which each neuron was singled out ([`NOT_FIXED`] if
    /// not): an automorphism fixes a level's singled-out neurons when it moves none singled out
    /// at or above it.
    pub(super) fixed_at: Vec<u32>,
    /// The latest partition's colours, and for each neuron in a class of more than one set of
    /// twins (an *open* neuron) its piece ([`NO_PIECE`] for the others): pieces are connected
    /// through open neurons only.
    pub(super) colour: Vec<u64>,
    pub(super) piece: Vec<u32>,
    pub(super) piece_size: Vec<usize>,
    /// Scratch: a permutation's image of each neuron (the identity between uses), and which
    /// neurons a guessed swap already maps onto (none between uses).
    pub(super) image: Vec<u32>,
    pub(super) taken: Vec<bool>,
}

pub(super) const NO_PIECE: u32 = u32::MAX;

impl<S: Structure> AutomorphismState<S> {
    pub(super) fn new(structure: &S) -> Self {
        let mut offsets = vec![0];
        for size in structure.cell_sizes() {
            offsets.push(offsets[offsets.len() - 1] + size);
        }
        let n = offsets[offsets.len() - 1];
        AutomorphismState {
            offsets,
            links: structure.links(),
            fixed_at: vec![NOT_FIXED; n],
            colour: vec![0; n],
            piece: vec![NO_PIECE; n],
            piece_size: Vec::new(),
            image: (0..n as u32).collect(),
            taken: vec![false; n],
        }
    }

    /// The layer and index of neuron `v`.
    pub(super) fn neuron(&self, v: u32) -> (usize, usize) {
        let v = v as usize;
        let k = self.offsets.partition_point(|&o| o <= v) - 1;
        (k, v - self.offsets[k])
    }

    /// Every connection of vertex `v` as (other vertex, tag) ([`Structure::neighbours`]).
    pub(super) fn neighbours<'n>(
        &'n self,
        structure: &'n S,
        v: u32,
    ) -> impl Iterator<Item = (u32, u32)> + 'n {
        let (k, i) = self.neuron(v);
        structure.neighbours(&self.links, &self.offsets, k, i)
    }

    /// Finds the pieces of the stable partition `colours`. Connections from a class to a class
    /// that is one set of twins are the same for every neuron of the class (the partition is
    /// stable, and twins have the same connections), so swapping two pieces whose neurons
    /// match colour for colour leaves those connections as they were.
    pub(super) fn find_pieces(
        &mut self,
        structure: &S,
        colours: &[Vec<u64>],
        twins: &[Vec<usize>],
    ) {
        self.piece.fill(NO_PIECE);
        self.piece_size.clear();
        let mut open = Vec::new();
        for (k, layer) in colours.iter().enumerate() {
            let base = self.offsets[k];
            self.colour[base..base + layer.len()].copy_from_slice(layer);
            let mut by_colour: Vec<(u64, usize, usize)> = layer
                .iter()
                .enumerate()
                .map(|(i, &c)| (c, twins[k][i], i))
                .collect();
            by_colour.sort_unstable();
            for class in by_colour.chunk_by(|x, y| x.0 == y.0) {
                if class[0].1 != class[class.len() - 1].1 {
                    open.extend(class.iter().map(|x| (base + x.2) as u32));
                }
            }
        }
        // Open neurons get a provisional mark, then a piece by a search through open neurons.
        const OPEN: u32 = NO_PIECE - 1;
        for &v in &open {
            self.piece[v as usize] = OPEN;
        }
        let mut stack = Vec::new();
        for &start in &open {
            if self.piece[start as usize] != OPEN {
                continue;
            }
            let id = self.piece_size.len() as u32;
            self.piece[start as usize] = id;
            stack.push(start);
            let mut size = 0;
            while let Some(v) = stack.pop() {
                size += 1;
                let next: Vec<u32> = self.neighbours(structure, v).map(|(u, _)| u).collect();
                for u in next {
                    if self.piece[u as usize] == OPEN {
                        self.piece[u as usize] = id;
                        stack.push(u);
                    }
                }
            }
            self.piece_size.push(size);
        }
    }

    /// The open neighbours of `v` as (colour, position and direction, neuron), sorted.
    pub(super) fn open_neighbours(&self, structure: &S, v: u32) -> Vec<(u64, u32, u32)> {
        let mut list: Vec<(u64, u32, u32)> = self
            .neighbours(structure, v)
            .filter(|&(u, _)| self.piece[u as usize] != NO_PIECE)
            .map(|(u, tag)| (self.colour[u as usize], tag, u))
            .collect();
        list.sort_unstable();
        list
    }

    /// A guess at an automorphism that swaps the piece of neuron `from` with the (other) piece
    /// of `to`, mapping `from` to `to`: from there, each open neighbour of a mapped neuron goes to
    /// the first free open neighbour of its image with the same colour and connection. Exact
    /// for pieces that match colour for colour; a wrong guess is caught by the check after.
    pub(super) fn guess_swap(&mut self, structure: &S, from: u32, to: u32) -> Option<Permutation> {
        let (pa, pb) = (self.piece[from as usize], self.piece[to as usize]);
        if pa == pb || pa == NO_PIECE || pb == NO_PIECE {
            return None;
        }
        if self.piece_size[pa as usize] != self.piece_size[pb as usize] {
            return None;
        }
        let mut pairs: Permutation = vec![(from, to)];
        self.image[from as usize] = to;
        self.taken[to as usize] = true;
        let mut ok = true;
        let mut next = 0;
        while ok && next < pairs.len() {
            let (x, y) = pairs[next];
            next += 1;
            let (nx, ny) = (
                self.open_neighbours(structure, x),
                self.open_neighbours(structure, y),
            );
            if nx.len() != ny.len() {
                ok = false;
                break;
            }
            let mut start = 0;
            for &(colour, tag, u) in &nx {
                if self.image[u as usize] != u {
                    continue; // mapped already
                }
                // Neighbours of equal (colour, tag) are consecutive in both sorted lists.
                while start < ny.len() && (ny[start].0, ny[start].1) < (colour, tag) {
                    start += 1;
                }
                let free = ny[start..]
                    .iter()
                    .take_while(|w| (w.0, w.1) == (colour, tag))
                    .find(|w| !self.taken[w.2 as usize]);
                match free {
                    Some(&(_, _, w)) => {
                        self.image[u as usize] = w;
                        self.taken[w as usize] = true;
                        pairs.push((u, w));
                    }
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
        }
        for &(u, w) in &pairs {
            self.image[u as usize] = u;
            self.taken[w as usize] = false;
        }
        if !ok || pairs.len() != self.piece_size[pa as usize] {
            return None;
        }
        let back: Vec<(u32, u32)> = pairs.iter().map(|&(u, w)| (w, u)).collect();
        pairs.extend(back);
        Some(pairs)
    }

    /// Whether `gamma` (a permutation within cells) maps the structure onto itself.
    pub(super) fn is_automorphism(&mut self, structure: &S, gamma: &Permutation) -> bool {
        structure.is_automorphism(&self.links, &self.offsets, &mut self.image, gamma)
    }

    /// The automorphism taking each neuron of one leaf's order to the neuron of the same label
    /// in another leaf's order of the same form.
    pub(super) fn between(&self, from: &[Vec<usize>], to: &[Vec<usize>]) -> Permutation {
        let mut gamma = Vec::new();
        for (k, (a, b)) in from.iter().zip(to).enumerate() {
            let base = self.offsets[k];
            for (&x, &y) in a.iter().zip(b) {
                if x != y {
                    gamma.push(((base + x) as u32, (base + y) as u32));
                }
            }
        }
        gamma
    }

    /// The classes of interchangeable pieces of the latest partition ([`Self::find_pieces`]):
    /// pieces of two neurons or more, each with neurons of distinct colours up to twins,
    /// grouped by their colours, a group kept only if the piece-for-piece swap of its first
    /// piece with each other one (colour to colour) is an automorphism. For each class, its
    /// pieces' lowest neuron of lowest colour.
    pub(super) fn piece_classes(&mut self, structure: &S, twins: &[Vec<usize>]) -> Vec<Vec<u32>> {
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); self.piece_size.len()];
        for (v, &p) in self.piece.iter().enumerate() {
            if p != NO_PIECE && self.piece_size[p as usize] > 1 {
                members[p as usize].push(v as u32);
            }
        }
        let twin_of = |v: u32| {
            let (k, i) = self.neuron(v);
            (k, twins[k][i])
        };
        // Pieces with neurons of distinct colours up to twins, by their colours.
        let mut discrete: Vec<(Vec<u64>, Vec<u32>)> = Vec::new();
        for mut piece in members.into_iter().filter(|m| !m.is_empty()) {
            piece.sort_unstable_by_key(|&v| (self.colour[v as usize], v));
            let distinct = piece.windows(2).all(|w| {
                self.colour[w[0] as usize] != self.colour[w[1] as usize]
                    || twin_of(w[0]) == twin_of(w[1])
            });
            if distinct {
                let colours = piece.iter().map(|&v| self.colour[v as usize]).collect();
                discrete.push((colours, piece));
            }
        }
        discrete.sort_unstable();
        let mut classes = Vec::new();
        for group in discrete.chunk_by(|a, b| a.0 == b.0) {
            if group.len() < 2 {
                continue;
            }
            let first = &group[0].1;
            let all_swap = group[1..].iter().all(|(_, other)| {
                let mut gamma: Permutation =
                    first.iter().copied().zip(other.iter().copied()).collect();
                gamma.extend(other.iter().copied().zip(first.iter().copied()));
                self.is_automorphism(structure, &gamma)
            });
            if all_swap {
                classes.push(group.iter().map(|(_, piece)| piece[0]).collect());
            }
        }
        classes
    }
}
