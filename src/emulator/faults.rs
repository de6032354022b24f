//! Fault injection for the emulator, deterministic under a seed (filled in next).

/// Which faults to inject. Every rate is a probability per request in [0, 1].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FaultConfig {
    /// Seed for the fault decisions; the same seed and request order give the same faults.
    #[arg(long = "fault-seed", env = "AFB_EMULATOR_FAULT_SEED", default_value_t = 0)]
    pub seed: u64,
}
