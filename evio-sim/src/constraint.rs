//! Constraints on the configuration a seed draws, for handlers that need them.

use core::fmt;

use crate::{FaultKind, FaultRates, FaultSet, SimConfig};

/// Limits on the configuration a seed draws: buffer sizes and a connection count a
/// handler needs, and which faults may be injected.
///
/// A seed draws small capacities on purpose (a one-byte output buffer, a single
/// connection slot), which finds engine bugs but can make a handler's job impossible:
/// a 4-byte error reply never fits a one-byte output buffer. Constraints raise what is
/// drawn to the minimum asked and leave every other draw of the seed as it was. A
/// [`Swarm`](crate::Swarm) applies them to every seed, and again when a failing seed is
/// replayed through the same call (`EVIO_SIM_SEED`), so a replay runs what failed.
///
/// ```
/// use evio_sim::{Constraints, FaultKind, FaultSet, SimConfig};
///
/// let constraints = Constraints {
///     min_output_capacity: 64,
///     faults: FaultSet::ALL.without(FaultKind::ResetMidStream),
///     ..Constraints::none()
/// };
/// let config = SimConfig::constrained(7, 1000, &constraints);
/// assert!(config.engine.output_capacity >= 64);
/// assert_eq!(config.profile.weights[5], 0); // no resets in the script
///
/// // Nothing injected at all:
/// let quiet = SimConfig::fault_free(7, 1000);
/// assert_eq!(quiet.rates, evio_sim::FaultRates::none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraints {
    /// Smallest input buffer per connection, in bytes: at least the longest request
    /// the handler must be able to take whole.
    pub min_input_capacity: usize,
    /// Smallest output buffer per connection, in bytes: at least the longest reply the
    /// handler writes whole.
    pub min_output_capacity: usize,
    /// Smallest connection pool (`max_connections`).
    pub min_connections: usize,
    /// The faults a run may inject; the rates of the others are set to zero. The
    /// kinds that come from the script rather than from a rate are taken out of the
    /// script's event mix instead: without [`FaultKind::ResetMidStream`] no client
    /// resets its connection, without [`FaultKind::BrokenPipe`] no client closes its
    /// socket outright (clients still half-close), and without
    /// [`FaultKind::PoolFull`] the pool has a slot for every client the script can
    /// connect.
    ///
    /// With [`FaultSet::NONE`] nothing is injected. Two counters can still count a
    /// hard case that arises by itself: [`FaultKind::EofWithLastData`] (a client
    /// half-closes right behind its last bytes) and
    /// [`FaultKind::DetachWithReadinessQueued`] (readiness still queued for a
    /// connection the handler itself closed).
    pub faults: FaultSet,
}

impl Default for Constraints {
    /// [`Constraints::none`].
    fn default() -> Self {
        Constraints::none()
    }
}

impl Constraints {
    /// Nothing constrained: the seed's configuration as drawn.
    pub const fn none() -> Self {
        Constraints {
            min_input_capacity: 0,
            min_output_capacity: 0,
            min_connections: 0,
            faults: FaultSet::ALL,
        }
    }

    /// No fault injected (see [`Constraints::faults`]), capacities as drawn.
    pub const fn fault_free() -> Self {
        Constraints {
            faults: FaultSet::NONE,
            ..Constraints::none()
        }
    }

    /// Whether these constraints change nothing.
    pub fn is_none(&self) -> bool {
        *self == Constraints::none()
    }

    /// Applies the constraints to `config`, drawn for a script of `steps` events
    /// (only the pool size without [`FaultKind::PoolFull`] depends on `steps`).
    pub fn apply(&self, config: &mut SimConfig, steps: usize) {
        let engine = &mut config.engine;
        engine.input_capacity = engine.input_capacity.max(self.min_input_capacity);
        engine.output_capacity = engine.output_capacity.max(self.min_output_capacity);
        engine.max_connections = engine.max_connections.max(self.min_connections);
        config.rates = core::mem::replace(&mut config.rates, FaultRates::none()).only(self.faults);
        // Indices into `Profile::weights`.
        const CLOSE: usize = 4;
        const RESET: usize = 5;
        if !self.faults.contains(FaultKind::ResetMidStream) {
            config.profile.weights[RESET] = 0;
        }
        if !self.faults.contains(FaultKind::BrokenPipe) {
            config.profile.weights[CLOSE] = 0;
        }
        if !self.faults.contains(FaultKind::PoolFull) {
            // The script connects at most `max_clients` clients per 1,000 events.
            let clients = config.profile.max_clients * (1 + steps.saturating_sub(1) / 1000);
            engine.max_connections = engine.max_connections.max(clients);
        }
    }
}

/// The constraints that differ from [`Constraints::none`], or `none`.
impl fmt::Display for Constraints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("none");
        }
        let mut parts = Vec::new();
        if self.min_input_capacity > 0 {
            parts.push(format!("input capacity >= {}", self.min_input_capacity));
        }
        if self.min_output_capacity > 0 {
            parts.push(format!("output capacity >= {}", self.min_output_capacity));
        }
        if self.min_connections > 0 {
            parts.push(format!("connections >= {}", self.min_connections));
        }
        if self.faults != FaultSet::ALL {
            parts.push(format!("faults: {}", self.faults));
        }
        f.write_str(&parts.join(", "))
    }
}
