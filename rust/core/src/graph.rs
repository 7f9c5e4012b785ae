//! Networks as graphs of permutation groups (docs/definition.md#graphs-of-permutation-groups):
//! the structure and its validation. A *group* is a set of units renamed together; a *writer* is
//! one layer's rows written into one group, with the columns it reads, which lie in groups too.
//! A chain is the graph whose groups are its input features and each layer's outputs, one writer
//! each. The distance lives in `crate::graph_match`.

use crate::error::{Error, Result};
use crate::topology::Layer;

/// What a group's units are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// The data's features: never renamed (layers may still write into them).
    Input,
    /// Renamed freely.
    Hidden,
    /// The model's outputs: renamed freely, or kept fixed when the graph says so.
    Output,
}

/// A set of units renamed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub size: usize,
    pub kind: GroupKind,
    /// The units are `heads` blocks of `size / heads` (attention heads); 1 otherwise.
    pub heads: usize,
    /// Groups with the same head set share the renaming of their heads (a head's query-key
    /// units and its value units); `None` for a group alone.
    pub head_set: Option<usize>,
}

/// The columns a writer reads from one group: `width` consecutive columns per unit (a
/// convolution's kernel positions, a flattened feature map's positions; 1 for a linear layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub group: usize,
    pub width: usize,
}

/// One layer's rows written into one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    pub group: usize,
    /// The layer's columns, in order: `reads[0]`'s units (each `width` columns), then
    /// `reads[1]`'s, and so on.
    pub reads: Vec<Read>,
    /// The connections: one neuron per unit of `group`, `n_in` = the columns of `reads`.
    pub layer: Layer,
}

/// A network as groups and writers. Invariants (checked by [`Graph::new`]): the groups are in
/// matching order (input groups first); every writer's layer has one neuron per unit of its
/// group and one input per column it reads; heads divide their group's size and a head set
/// joins groups of one head count; input groups have no heads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    groups: Vec<Group>,
    writers: Vec<Writer>,
    fixed_outputs: bool,
}

fn invalid(reason: String) -> Error {
    Error::InvalidArgument(format!("graph: {reason}"))
}

impl Graph {
    /// Checks and builds a graph; `groups` in matching order
    /// (docs/definition.md#graph-matching-order). `fixed_outputs`: output groups keep the
    /// identity matching instead of being matched freely.
    pub fn new(groups: Vec<Group>, writers: Vec<Writer>, fixed_outputs: bool) -> Result<Self> {
        if groups.is_empty() {
            return Err(invalid("a graph needs at least one group".into()));
        }
        let mut inputs_done = false;
        for (g, group) in groups.iter().enumerate() {
            if group.heads == 0 || group.size % group.heads != 0 {
                return Err(invalid(format!(
                    "group {g}: {} units do not split into {} heads",
                    group.size, group.heads
                )));
            }
            match group.kind {
                GroupKind::Input if inputs_done => {
                    return Err(invalid(format!(
                        "group {g}: input groups come first in matching order"
                    )))
                }
                GroupKind::Input if group.heads != 1 || group.head_set.is_some() => {
                    return Err(invalid(format!("group {g}: an input group has no heads")))
                }
                GroupKind::Input => {}
                _ => inputs_done = true,
            }
            if let Some(set) = group.head_set {
                let first = groups.iter().find(|h| h.head_set == Some(set));
                if first.is_some_and(|h| h.heads != group.heads) {
                    return Err(invalid(format!(
                        "group {g}: head set {set} joins groups of different head counts"
                    )));
                }
            }
        }
        for (w, writer) in writers.iter().enumerate() {
            check_writer(w, writer, &groups)?;
        }
        check_every_group_is_used(&groups, &writers)?;
        Ok(Graph {
            groups,
            writers,
            fixed_outputs,
        })
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    pub fn writers(&self) -> &[Writer] {
        &self.writers
    }

    pub fn fixed_outputs(&self) -> bool {
        self.fixed_outputs
    }

    /// Whether group `g` keeps the identity matching: input groups, and output groups when the
    /// outputs are fixed.
    pub fn is_fixed(&self, g: usize) -> bool {
        match self.groups[g].kind {
            GroupKind::Input => true,
            GroupKind::Output => self.fixed_outputs,
            GroupKind::Hidden => false,
        }
    }

    /// The groups that report a distance, in matching order: every group some layer writes
    /// into (docs/definition.md#graph-values).
    pub fn reported(&self) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| self.writers.iter().any(|w| w.group == g))
            .collect()
    }

    /// The number of values a distance reports (the graph's "depth").
    pub fn depth(&self) -> usize {
        self.reported().len()
    }

    /// Checks that `other` has this graph's structure (docs/definition.md#graph-input-sets):
    /// the same groups (kinds, heads, head sets), the same writers reading the same groups, the
    /// same input features, equal head sizes and, for fixed groups, equal sizes. Free groups
    /// may differ in size, as a chain's hidden layers may.
    pub fn check_comparable(&self, other: &Graph) -> Result<()> {
        let mismatch = |what: String| Err(Error::Mismatch(format!("graphs of different {what}")));
        if self.groups.len() != other.groups.len() || self.writers.len() != other.writers.len() {
            return mismatch(format!(
                "structure: {} groups and {} writers against {} and {}",
                self.groups.len(),
                self.writers.len(),
                other.groups.len(),
                other.writers.len()
            ));
        }
        if self.fixed_outputs != other.fixed_outputs {
            return mismatch("output conventions: fixed against free outputs".into());
        }
        for (g, (x, y)) in self.groups.iter().zip(&other.groups).enumerate() {
            if (x.kind, x.heads, x.head_set) != (y.kind, y.heads, y.head_set) {
                return mismatch(format!("structure: group {g} differs in kind or heads"));
            }
            if (self.is_fixed(g) || x.heads > 1) && x.size != y.size {
                return mismatch(format!(
                    "widths: group {g} has {} units against {} (input, fixed and head groups \
                     must be equal)",
                    x.size, y.size
                ));
            }
        }
        for (w, (x, y)) in self.writers.iter().zip(&other.writers).enumerate() {
            if x.group != y.group || x.reads != y.reads {
                return mismatch(format!("structure: writer {w} differs"));
            }
        }
        Ok(())
    }
}

/// Every group other than an input is written by some layer (an unwritten group's units would
/// be matched arbitrarily, and its readers compared through that), and every input is read or
/// written. So a group's size is bounded by a layer's, which the caller has already allocated:
/// no declared size alone makes the distance allocate.
fn check_every_group_is_used(groups: &[Group], writers: &[Writer]) -> Result<()> {
    let mut written = vec![false; groups.len()];
    let mut read = vec![false; groups.len()];
    for writer in writers {
        written[writer.group] = true;
        for r in &writer.reads {
            read[r.group] = true;
        }
    }
    for (g, group) in groups.iter().enumerate() {
        if group.kind != GroupKind::Input && !written[g] {
            return Err(invalid(format!("group {g}: no layer writes it")));
        }
        if !written[g] && !read[g] {
            return Err(invalid(format!("group {g}: no layer reads or writes it")));
        }
    }
    Ok(())
}

/// A writer's group and reads exist and its layer has their shape.
fn check_writer(w: usize, writer: &Writer, groups: &[Group]) -> Result<()> {
    let size = |g: usize| {
        groups
            .get(g)
            .map(|group| group.size)
            .ok_or_else(|| invalid(format!("writer {w} names group {g} of {}", groups.len())))
    };
    let n_out = size(writer.group)?;
    let mut n_in = 0usize;
    for read in &writer.reads {
        if read.width == 0 {
            return Err(invalid(format!("writer {w}: a read of width 0")));
        }
        n_in = size(read.group)?
            .checked_mul(read.width)
            .and_then(|c| c.checked_add(n_in))
            .ok_or_else(|| invalid(format!("writer {w}: too many columns")))?;
    }
    let layer = &writer.layer;
    if (layer.n_in(), layer.n_out()) != (n_in, n_out) {
        return Err(invalid(format!(
            "writer {w}: its layer is {} x {}, but it reads {n_in} columns and writes {n_out} \
             units",
            layer.n_in(),
            layer.n_out()
        )));
    }
    Ok(())
}

/// A group without heads, for the tests of the graph modules.
#[cfg(test)]
pub(crate) fn group(size: usize, kind: GroupKind) -> Group {
    Group {
        size,
        kind,
        heads: 1,
        head_set: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(group: usize, reads: &[(usize, usize)], n_in: usize, cols: &[Vec<u32>]) -> Writer {
        Writer {
            group,
            reads: reads
                .iter()
                .map(|&(group, width)| Read { group, width })
                .collect(),
            layer: Layer::from_neuron_inputs(0, n_in, cols).unwrap(),
        }
    }

    #[test]
    fn a_layer_of_the_wrong_shape_is_refused() {
        let groups = vec![group(3, GroupKind::Input), group(2, GroupKind::Output)];
        let bad = writer(1, &[(0, 1)], 4, &[vec![0], vec![1]]);
        let err = Graph::new(groups.clone(), vec![bad], false).unwrap_err();
        assert!(err.to_string().contains("reads 3 columns"), "{err}");
        let good = writer(1, &[(0, 1)], 3, &[vec![0], vec![1]]);
        let graph = Graph::new(groups, vec![good], false).unwrap();
        assert_eq!(graph.reported(), vec![1]);
    }

    #[test]
    fn a_group_no_layer_writes_is_refused_whatever_its_size() {
        let layer = || writer(2, &[(0, 1)], 3, &[vec![0], vec![1]]);
        for kind in [GroupKind::Hidden, GroupKind::Output, GroupKind::Input] {
            let groups = vec![
                group(3, GroupKind::Input),
                group(1 << 40, kind),
                group(2, GroupKind::Output),
            ];
            let err = Graph::new(groups, vec![layer()], true).unwrap_err();
            assert!(err.to_string().contains("group 1: no layer"), "{err}");
        }
    }

    #[test]
    fn inputs_come_first_and_heads_divide() {
        let late = vec![group(2, GroupKind::Hidden), group(3, GroupKind::Input)];
        assert!(Graph::new(late, vec![], false).is_err());
        let mut heads = group(6, GroupKind::Hidden);
        heads.heads = 4;
        assert!(Graph::new(vec![group(3, GroupKind::Input), heads], vec![], false).is_err());
    }
}
