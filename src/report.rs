//! What a program says of its whole run, as its last line on stderr: how long it took and its
//! peak memory (the kernel's high-water mark of resident memory, `VmHWM`), so that a build log
//! of many derivations gives each program's time and memory without wrapping the builders.

use std::time::Instant;

/// The process's peak resident memory in bytes, where the kernel reports it (Linux).
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kib * 1024)
}

/// The last line: `PROGRAM: done in S s, peak memory M`.
pub fn finished(program: &str, start: Instant) {
    let memory = peak_memory().map(crate::layering::human_size).unwrap_or_else(|| "unknown".into());
    eprintln!("{program}: done in {:.2} s, peak memory {memory}", start.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    /// The high-water mark sees memory the process touched (64 MiB here), not only what it holds now.
    #[test]
    fn peak_memory_covers_what_was_touched() {
        let before = super::peak_memory().expect("Linux reports VmHWM");
        let v = vec![1u8; 64 << 20];
        assert_eq!(v.iter().step_by(4096).map(|&b| b as usize).sum::<usize>(), v.len() / 4096);
        drop(v);
        let after = super::peak_memory().unwrap();
        assert!(after >= before.max(64 << 20), "{before} then {after}");
    }
}
