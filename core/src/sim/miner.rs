//! Clock-paced miners for simulated nodes: what a tab's workers or a relay's mining threads
//! do with the node's templates. A miner works on the newest template its node made and
//! solves it `solve_ms` later, then hands the header back as [`Input::MinedHeader`], like a
//! worker; a newer template replaces the job, and after a solve it waits for the next one.
//! On the test network a solve costs a hash or two: what takes time is the host's round trip
//! to its workers, which `solve_ms` stands for. The node itself paces the miner by the clock
//! (it makes no template while the tip's median time past has not fallen behind it).

use crate::miner::{BlockTemplate, mine};
use crate::node::Input;

use super::{Actor, Ev, Sim};

/// A simulated node's miner (see [`Sim::start_miner`]).
#[derive(Debug)]
pub struct SimMiner {
    /// Simulated ms from a template to its solved header.
    pub solve_ms: u64,
    /// Blocks solved and handed to the node.
    pub found: u64,
    /// The template being worked on, with the job number its solve event carries.
    job: Option<(u64, BlockTemplate)>,
    jobs: u64,
}

impl Sim {
    /// Starts a miner on node `i` that solves each template `solve_ms` after the node made
    /// it (the node needs a mining key; only for networks whose difficulty is at a low limit,
    /// as the solve is a real search). Templates the node made before are not worked on.
    pub fn start_miner(&mut self, i: usize, solve_ms: u64) {
        if let Actor::Node(n) = &mut self.actors[i] {
            n.miner = Some(SimMiner {
                solve_ms,
                found: 0,
                job: None,
                jobs: 0,
            });
            // A fresh template for the new miner: the host asks the node again when it
            // starts mining.
            let key = n.node.config().mining_key;
            n.node.set_mining_key(key);
        }
        self.input(i, Input::Tick);
    }

    /// Stops node `i`'s miner (its job is dropped).
    pub fn stop_miner(&mut self, i: usize) {
        if let Actor::Node(n) = &mut self.actors[i] {
            n.miner = None;
        }
    }

    /// Blocks node `i`'s miner found so far.
    pub fn mined_by(&self, i: usize) -> u64 {
        self.sim_node(i).miner.as_ref().map_or(0, |m| m.found)
    }

    /// Node `i` made `t`: its miner, if any, drops its job for this one.
    pub(super) fn new_job(&mut self, i: usize, t: BlockTemplate) {
        let Actor::Node(n) = &mut self.actors[i] else {
            return;
        };
        let Some(m) = &mut n.miner else {
            return;
        };
        m.jobs += 1;
        let (job, solve_ms) = (m.jobs, m.solve_ms);
        m.job = Some((job, t));
        self.schedule(solve_ms, Ev::Solve { to: i, job });
    }

    /// Job `job` of node `i`'s miner is solved, unless a newer template replaced it.
    pub(super) fn solve(&mut self, i: usize, job: u64) {
        let Actor::Node(n) = &mut self.actors[i] else {
            return;
        };
        if !n.online {
            return;
        }
        let Some(m) = &mut n.miner else {
            return;
        };
        if m.job.as_ref().is_none_or(|(j, _)| *j != job) {
            return;
        }
        let (_, t) = m.job.take().expect("checked just above");
        m.found += 1;
        let block = mine(t.block).expect("the simulated network's bits are valid");
        self.input(i, Input::MinedHeader(block.header));
    }
}
