//! Who gets the next conversation: balanced or round-robin assignment within
//! a team, only to agents who are online, not away, and below capacity.
//!
//! Pure: the caller counts each agent's open conversations and passes them
//! in; the store applies the choice. When nobody qualifies the answer is
//! `None` and the conversation waits in the team's holding queue.

use serde::{Deserialize, Serialize};

use crate::ids::UserId;

/// How a team hands out work.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The available agent with the fewest open conversations (ties: the
    /// lowest share of capacity used, then the stable order given).
    #[default]
    Balanced,
    /// The next available agent after the last one assigned, in the order given.
    RoundRobin,
    /// Nobody is assigned automatically; conversations wait for a person.
    Manual,
}

/// One agent's situation at the moment of choosing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub user_id: UserId,
    /// Open or pending conversations assigned now.
    pub open: u32,
    /// The most the agent takes at once (0 takes none).
    pub capacity: u32,
    /// Online and not away.
    pub available: bool,
}

impl Candidate {
    fn has_room(&self) -> bool {
        self.available && self.open < self.capacity
    }
}

/// Picks the agent for one conversation, or `None` (hold it in the queue).
/// `candidates` must be in a stable order (e.g. by user id) for round-robin
/// to rotate fairly; `last` is the team's previously assigned agent.
pub fn choose(
    strategy: Strategy,
    candidates: &[Candidate],
    last: Option<UserId>,
) -> Option<UserId> {
    match strategy {
        Strategy::Manual => None,
        Strategy::Balanced => candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.has_room())
            // Fewest open first; then lowest load ratio (open/capacity, compared
            // by cross-multiplication to stay in integers); then given order.
            .min_by(|(i, a), (j, b)| {
                a.open
                    .cmp(&b.open)
                    .then(
                        (a.open as u64 * b.capacity as u64)
                            .cmp(&(b.open as u64 * a.capacity as u64)),
                    )
                    .then(i.cmp(j))
            })
            .map(|(_, c)| c.user_id),
        Strategy::RoundRobin => {
            let start = last
                .and_then(|l| candidates.iter().position(|c| c.user_id == l))
                .map(|p| p + 1)
                .unwrap_or(0);
            (0..candidates.len())
                .map(|k| &candidates[(start + k) % candidates.len()])
                .find(|c| c.has_room())
                .map(|c| c.user_id)
        }
    }
}

/// Assigns `n` conversations one after another, updating loads as it goes:
/// what a burst of new conversations does. Returns each choice.
pub fn assign_burst(
    strategy: Strategy,
    candidates: &mut [Candidate],
    mut last: Option<UserId>,
    n: usize,
) -> Vec<Option<UserId>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let pick = choose(strategy, candidates, last);
        if let Some(id) = pick {
            let c = candidates
                .iter_mut()
                .find(|c| c.user_id == id)
                .expect("the pick is a candidate");
            c.open += 1;
            last = Some(id);
        }
        out.push(pick);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn agents(specs: &[(u32, u32, bool)]) -> Vec<Candidate> {
        specs
            .iter()
            .enumerate()
            .map(|(i, &(open, capacity, available))| Candidate {
                user_id: UserId(Uuid::from_u128(i as u128 + 1)),
                open,
                capacity,
                available,
            })
            .collect()
    }

    fn spread(c: &[Candidate]) -> u32 {
        let loads: Vec<u32> = c
            .iter()
            .filter(|c| c.available && c.capacity > 0)
            .map(|c| c.open)
            .collect();
        loads.iter().max().unwrap_or(&0) - loads.iter().min().unwrap_or(&0)
    }

    /// (name, agents as (open, capacity, available), burst, strategy,
    ///  expected assigned); the spread must stay within one.
    type Case<'a> = (&'a str, &'a [(u32, u32, bool)], usize, Strategy, usize);

    #[test]
    fn bursts_stay_within_one_of_balanced() {
        let cases: &[Case<'_>] = &[
            (
                "equal agents, empty",
                &[(0, 10, true); 5],
                23,
                Strategy::Balanced,
                23,
            ),
            (
                "uneven start evens out",
                &[(7, 20, true), (0, 20, true), (3, 20, true)],
                30,
                Strategy::Balanced,
                30,
            ),
            (
                "round robin, equal start",
                &[(0, 10, true); 4],
                18,
                Strategy::RoundRobin,
                18,
            ),
            (
                "50 agents, 10k burst, room for all",
                &[(0, 250, true); 50],
                10_000,
                Strategy::Balanced,
                10_000,
            ),
        ];
        for (name, specs, burst, strategy, assigned) in cases {
            let mut c = agents(specs);
            let picks = assign_burst(*strategy, &mut c, None, *burst);
            assert_eq!(
                picks.iter().flatten().count(),
                *assigned,
                "{name}: everyone with room gets work"
            );
            assert!(
                spread(&c) <= 1,
                "{name}: loads {:?} must be within one of balanced",
                c.iter().map(|c| c.open).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn capacity_unavailability_and_holding() {
        // Agent 1 is away, agent 2 has capacity 2, agent 3 capacity 3.
        let mut c = agents(&[(0, 10, false), (0, 2, true), (0, 3, true)]);
        let picks = assign_burst(Strategy::Balanced, &mut c, None, 7);
        assert_eq!(
            picks.iter().flatten().count(),
            5,
            "only the capacity of available agents is used"
        );
        assert_eq!(
            &picks[5..],
            &[None, None],
            "the rest wait in the holding queue"
        );
        assert_eq!(c[0].open, 0, "an away agent gets nothing");
        assert_eq!((c[1].open, c[2].open), (2, 3), "nobody exceeds capacity");
    }

    #[test]
    fn round_robin_rotates_after_the_last_one_and_skips_full_agents() {
        let c = agents(&[(0, 5, true), (5, 5, true), (0, 5, true)]);
        let first = c[0].user_id;
        assert_eq!(
            choose(Strategy::RoundRobin, &c, Some(first)),
            Some(c[2].user_id),
            "agent 2 is full, so agent 3 is next"
        );
        assert_eq!(
            choose(Strategy::RoundRobin, &c, Some(c[2].user_id)),
            Some(first),
            "wraps around"
        );
        assert_eq!(
            choose(Strategy::Manual, &c, None),
            None,
            "manual teams never auto-assign"
        );
    }

    #[test]
    fn balanced_prefers_lower_load_ratio_on_equal_counts() {
        // Both have 2 open; the one with capacity 10 has more room than capacity 3.
        let c = agents(&[(2, 3, true), (2, 10, true)]);
        assert_eq!(choose(Strategy::Balanced, &c, None), Some(c[1].user_id));
    }
}
