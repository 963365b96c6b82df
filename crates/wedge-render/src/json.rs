//! The snapshot as JSON, written in parallel where it is large.
//!
//! `wedge ps --all --json` on a machine with 10,000 threads writes ~9 MB;
//! serializing it on one thread after the scan is a tenth of the command's
//! wall time. The processes are rendered in slices by as many threads as
//! there are CPUs and spliced into the rest of the document, byte for byte
//! what `serde_json::to_writer` would write.

use std::io::Write;
use wedge_model::{Process, Snapshot};

/// Below this many threads one serializer is as fast as several.
const PARALLEL_FROM_THREADS: usize = 2_000;

pub fn write_snapshot<W: Write>(snap: &Snapshot, out: &mut W) -> std::io::Result<()> {
    let threads: usize = snap.processes.iter().map(|p| p.threads.len()).sum();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < PARALLEL_FROM_THREADS || cpus < 2 || snap.processes.len() < 2 {
        return serde_json::to_writer(&mut *out, snap).map_err(std::io::Error::from);
    }
    // Everything but the processes, then the processes where their empty
    // list stands. The key is written once at the top level; anything else
    // (a key of that name elsewhere, a string holding it) would show as a
    // second occurrence, and then the plain way is taken.
    let shell = Snapshot {
        processes: Vec::new(),
        ..shallow(snap)
    };
    let head = serde_json::to_vec(&shell).map_err(std::io::Error::from)?;
    const KEY: &[u8] = br#""processes":[]"#;
    let mut at = occurrences(&head, KEY);
    let (Some(pos), None) = (at.next(), at.next()) else {
        return serde_json::to_writer(&mut *out, snap).map_err(std::io::Error::from);
    };
    let slices = split_by_threads(&snap.processes, cpus);
    let parts: Vec<serde_json::Result<Vec<u8>>> = std::thread::scope(|s| {
        let handles: Vec<_> = slices
            .iter()
            .map(|slice| s.spawn(move || render(slice)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Ok(Vec::new())))
            .collect()
    });
    out.write_all(&head[..pos + KEY.len() - 1])?;
    let mut first = true;
    for part in parts {
        let part = part.map_err(std::io::Error::from)?;
        if part.is_empty() {
            continue;
        }
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        out.write_all(&part)?;
    }
    out.write_all(&head[pos + KEY.len() - 1..])
}

/// The snapshot without its processes, cheaply (mounts and notes are small).
fn shallow(snap: &Snapshot) -> Snapshot {
    Snapshot {
        schema_version: snap.schema_version,
        source: snap.source.clone(),
        system: snap.system.clone(),
        processes: Vec::new(),
        mounts: snap.mounts.clone(),
        fuse_connections: snap.fuse_connections.clone(),
        block_devices: snap.block_devices.clone(),
        superblocks: snap.superblocks.clone(),
        cgroup_freezes: snap.cgroup_freezes.clone(),
        blocked_reads: snap.blocked_reads.clone(),
        limitations: snap.limitations.clone(),
        partial: snap.partial.clone(),
        stats: snap.stats.clone(),
    }
}

/// Comma-separated processes, without the brackets.
fn render(slice: &[Process]) -> serde_json::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(slice.iter().map(|p| 600 + 900 * p.threads.len()).sum());
    for (i, p) in slice.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        serde_json::to_writer(&mut buf, p)?;
    }
    Ok(buf)
}

/// `n` consecutive slices with about the same number of threads each.
fn split_by_threads(procs: &[Process], n: usize) -> Vec<&[Process]> {
    let total: usize = procs.iter().map(|p| p.threads.len().max(1)).sum();
    let per = total.div_ceil(n).max(1);
    let mut out = Vec::with_capacity(n);
    let (mut start, mut acc) = (0, 0);
    for (i, p) in procs.iter().enumerate() {
        acc += p.threads.len().max(1);
        if acc >= per {
            out.push(&procs[start..=i]);
            start = i + 1;
            acc = 0;
        }
    }
    if start < procs.len() {
        out.push(&procs[start..]);
    }
    out
}

fn occurrences<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    (0..hay.len().saturating_sub(needle.len() - 1)).filter(move |&i| hay[i..].starts_with(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_as_serde() {
        // This machine's own processes, repeated until the parallel path
        // is taken.
        let opts = wedge_procfs::ScanOptions {
            cmdline: false,
            ..wedge_procfs::ScanOptions::default()
        };
        let mut snap = wedge_procfs::scan(&opts).expect("scan /proc");
        let base = snap.processes.clone();
        while snap
            .processes
            .iter()
            .map(|p| p.threads.len())
            .sum::<usize>()
            < 3 * PARALLEL_FROM_THREADS
        {
            snap.processes.extend(base.iter().cloned());
        }
        let mut ours = Vec::new();
        write_snapshot(&snap, &mut ours).unwrap();
        assert_eq!(ours, serde_json::to_vec(&snap).unwrap());
        // And the small case, one serializer.
        snap.processes.truncate(3);
        let mut ours = Vec::new();
        write_snapshot(&snap, &mut ours).unwrap();
        assert_eq!(ours, serde_json::to_vec(&snap).unwrap());
    }
}
