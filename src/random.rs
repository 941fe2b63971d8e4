//! Random bytes from the operating system (run ids, never-issued twins, probe values,
//! throwaway signing keys).
//!
//! Not aws-lc's generator: its first use seeds a CPU-jitter entropy collector, which
//! took about 25 ms of every run's start-up (a quarter of a 100-check run) for values
//! that only need to be unpredictable, not FIPS-seeded. TLS keeps aws-lc's own.

/// Fills `buf` from the system's random source.
pub fn fill(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    getrandom::fill(buf)
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_fills_differ() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        super::fill(&mut a).unwrap();
        super::fill(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
