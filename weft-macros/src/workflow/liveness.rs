//! Computes, for every durable await, the variables still needed after it: exactly what its
//! state variant must carry. A backward data-flow pass over the structured nodes, iterated to a
//! fixpoint at each loop.
//!
//! In: [`Lowered`]. Out: the saved set of each await, and errors for saved variables whose type
//! cannot be named or that borrow.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::ir::*;
use crate::diagnostics::Diagnostics;

type Set = BTreeSet<BindingId>;

struct Pass {
    saved: Vec<Set>,
    /// For each loop: live at its exit (`break`) and at its head (`continue`).
    loops: HashMap<LoopId, (Set, Set)>,
}

/// The live set after each await, indexed by [`AwaitId`].
pub(crate) fn analyse(lowered: &Lowered) -> Vec<Set> {
    let mut pass = Pass {
        saved: vec![Set::new(); lowered.awaits],
        loops: HashMap::new(),
    };
    pass.seq(&lowered.body, Set::new());
    pass.saved
}

impl Pass {
    fn seq(&mut self, seq: &[Node], out: Set) -> Set {
        let mut live = out;
        for node in seq.iter().rev() {
            live = self.node(node, live);
        }
        live
    }

    fn node(&mut self, node: &Node, out: Set) -> Set {
        match node {
            Node::Plain {
                uses, defs, exits, ..
            } => {
                let mut live: Set = out
                    .difference(&defs.iter().copied().collect())
                    .copied()
                    .collect();
                live.extend(uses.iter().copied());
                for l in &exits.breaks {
                    if let Some((brk, _)) = self.loops.get(l) {
                        live.extend(brk.iter().copied());
                    }
                }
                for l in &exits.continues {
                    if let Some((_, cont)) = self.loops.get(l) {
                        live.extend(cont.iter().copied());
                    }
                }
                live
            }
            Node::Await(a) => {
                let mut after = out;
                match &a.bind {
                    AwaitBind::Let { binds, .. } => {
                        for b in binds {
                            after.remove(b);
                        }
                    }
                    AwaitBind::Assign { target } => {
                        after.remove(target);
                    }
                    AwaitBind::Discard => {}
                }
                self.saved[a.id].extend(after.iter().copied());
                let mut live = after;
                live.extend(a.uses.iter().copied());
                live
            }
            Node::If {
                uses, then, els, ..
            } => {
                let mut live = self.seq(then, out.clone());
                match els {
                    Some(els) => live.extend(self.seq(els, out)),
                    None => live.extend(out),
                }
                live.extend(uses.iter().copied());
                live
            }
            Node::Match { uses, arms, .. } => {
                let mut live = uses.clone();
                for arm in arms {
                    // The guard runs with the arm's bindings, so its uses of them end here too.
                    let mut arm_live = self.seq(&arm.body, out.clone());
                    arm_live.extend(arm.uses.iter().copied());
                    for b in &arm.binds {
                        arm_live.remove(b);
                    }
                    live.extend(arm_live);
                }
                live
            }
            Node::Block(seq) => self.seq(seq, out),
            Node::Loop { id, body } => {
                let mut head = Set::new();
                loop {
                    self.loops.insert(*id, (out.clone(), head.clone()));
                    let mut next = self.seq(body, head.clone());
                    next.extend(head.iter().copied());
                    if next == head {
                        break;
                    }
                    head = next;
                }
                head
            }
            Node::Break(id) => self
                .loops
                .get(id)
                .map(|(b, _)| b.clone())
                .unwrap_or_default(),
            Node::Continue(id) => self
                .loops
                .get(id)
                .map(|(_, c)| c.clone())
                .unwrap_or_default(),
            Node::Return { uses, .. } => uses.clone(),
            Node::Assign { target, uses, .. } => {
                let mut live = out;
                live.remove(target);
                live.extend(uses.iter().copied());
                live
            }
        }
    }
}

/// Reports saved variables whose type the state cannot name, once per variable.
pub(crate) fn check_types(lowered: &Lowered, saved: &[Set], diags: &mut Diagnostics) {
    let mut reported = HashSet::new();
    for set in saved {
        for id in set {
            let binding = &lowered.bindings.all[*id];
            if binding.synthetic || !reported.insert(*id) {
                continue;
            }
            let name = &binding.user_name;
            match &binding.ty {
                TypeInfo::Known(_) => {}
                TypeInfo::Borrow(_) => diags.error_at(
                    binding.ident.span(),
                    format!("`{name}` borrows data and is held across a durable await: the workflow state is saved and restored, so it cannot hold references; own the data instead, for example with `.clone()` or `.to_owned()`"),
                ),
                TypeInfo::Unknown => {
                    diags.error_at(binding.ident.span(), super::hint::unknown_type(binding))
                }
            }
        }
    }
}
