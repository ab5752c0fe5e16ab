//! A model of OTP 25's supervisor restart decisions, written apart from Otter's code and as
//! plainly as `supervisor.erl` reads (`restart/2`, `restart_multiple_children`,
//! `terminate_children`, `start_children`, `add_restart`), to check Otter's supervisor
//! against: the policy's property test runs it beside the policy, the end-to-end one beside
//! a real node. Time is in ticks of the caller's choosing.

#![allow(dead_code, unreachable_pub)]

/// How siblings restart together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    OneForOne,
    OneForAll,
    RestForOne,
    SimpleOneForOne,
}

/// When a child restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartType {
    Permanent,
    Transient,
    Temporary,
}

/// Why a child exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Normal,
    Shutdown,
    /// `{shutdown, Term}`.
    ShutdownWith,
    /// Anything else: a crash.
    Error,
    Killed,
}

impl Reason {
    /// `normal`, `shutdown` and `{shutdown, _}` do not restart a transient child.
    pub fn is_clean(self) -> bool {
        matches!(
            self,
            Reason::Normal | Reason::Shutdown | Reason::ShutdownWith
        )
    }
}

/// How one start of a child goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Started,
    /// `init` returned `ignore`.
    Ignored,
    Failed,
}

/// A child spec and whether it has a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub id: usize,
    pub restart: RestartType,
    pub running: bool,
}

/// What the supervisor did to its children, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Stop(usize),
    /// A start, whatever its outcome.
    Start(usize),
}

/// A running supervisor's restart state.
#[derive(Debug, Clone)]
pub struct Supervisor {
    pub strategy: Strategy,
    pub intensity: u32,
    pub period: u64,
    /// In start order.
    pub children: Vec<Child>,
    /// Times of the restarts, newest first (OTP's `restarts` list).
    restarts: Vec<u64>,
    /// It reached its maximum restart intensity: its children are stopped and it exited.
    pub gave_up: bool,
}

impl Supervisor {
    /// A supervisor whose children all started.
    pub fn new(strategy: Strategy, intensity: u32, period: u64, restarts: &[RestartType]) -> Self {
        let children = restarts
            .iter()
            .enumerate()
            .map(|(id, &restart)| Child {
                id,
                restart,
                running: true,
            })
            .collect();
        Supervisor {
            strategy,
            intensity,
            period,
            children,
            restarts: Vec::new(),
            gave_up: false,
        }
    }

    fn position(&self, id: usize) -> Option<usize> {
        self.children.iter().position(|c| c.id == id)
    }

    /// `terminate_child(Id)`: its process stops, its spec stays (a temporary one goes).
    pub fn terminate(&mut self, id: usize) -> Vec<Effect> {
        let Some(i) = self.position(id).filter(|&i| self.children[i].running) else {
            return Vec::new();
        };
        self.children[i].running = false;
        if self.children[i].restart == RestartType::Temporary {
            self.children.remove(i);
        }
        vec![Effect::Stop(id)]
    }

    /// Child `id`'s process exited with `reason` at `now`; `start` decides how each start
    /// goes. An exit of a child with no process, or after giving up, changes nothing.
    pub fn exit(
        &mut self,
        id: usize,
        reason: Reason,
        now: u64,
        start: &mut dyn FnMut(usize) -> Outcome,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.gave_up {
            return effects;
        }
        let Some(i) = self.position(id).filter(|&i| self.children[i].running) else {
            return effects;
        };
        self.children[i].running = false;
        let dynamic = self.strategy == Strategy::SimpleOneForOne;
        match (self.children[i].restart, reason.is_clean()) {
            (RestartType::Temporary, _) => {
                self.children.remove(i);
            }
            (RestartType::Transient, true) => {
                if dynamic {
                    self.children.remove(i);
                }
            }
            _ => self.restart(id, now, start, &mut effects),
        }
        effects
    }

    /// `add_restart`: the restarts within the period ending now, this one included, may
    /// not be more than the intensity.
    fn add_restart(&mut self, now: u64) -> bool {
        let period = self.period;
        self.restarts.retain(|&t| t + period >= now);
        self.restarts.insert(0, now);
        self.restarts.len() <= self.intensity as usize
    }

    fn restart(
        &mut self,
        mut id: usize,
        now: u64,
        start: &mut dyn FnMut(usize) -> Outcome,
        effects: &mut Vec<Effect>,
    ) {
        // Each pass is OTP's restart/2; a failed start is its `try_again` with that child.
        'again: loop {
            if !self.add_restart(now) {
                self.gave_up = true;
                for c in self.children.iter_mut().rev() {
                    if c.running {
                        effects.push(Effect::Stop(c.id));
                        c.running = false;
                    }
                }
                return;
            }
            let first = match self.strategy {
                Strategy::OneForOne | Strategy::SimpleOneForOne => {
                    effects.push(Effect::Start(id));
                    let i = self.position(id).expect("restarting child exists");
                    match start(id) {
                        Outcome::Started => self.children[i].running = true,
                        Outcome::Ignored => {
                            // OTP 25 keeps a pid-less entry here; Otter forgets it (README).
                            if self.strategy == Strategy::SimpleOneForOne {
                                self.children.remove(i);
                            }
                        }
                        Outcome::Failed => continue 'again,
                    }
                    return;
                }
                Strategy::RestForOne => self.position(id).expect("restarting child exists"),
                Strategy::OneForAll => 0,
            };
            // terminate_children: the group, last first; temporary ones are dropped.
            for i in (first..self.children.len()).rev() {
                if self.children[i].running {
                    effects.push(Effect::Stop(self.children[i].id));
                    self.children[i].running = false;
                }
                if self.children[i].restart == RestartType::Temporary {
                    self.children.remove(i);
                }
            }
            // start_children: the group in order; the first failure is tried again.
            for i in first..self.children.len() {
                let cid = self.children[i].id;
                effects.push(Effect::Start(cid));
                match start(cid) {
                    Outcome::Started => self.children[i].running = true,
                    Outcome::Ignored => {}
                    Outcome::Failed => {
                        id = cid;
                        continue 'again;
                    }
                }
            }
            return;
        }
    }
}
