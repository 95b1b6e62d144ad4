//! Layer compression: how a layer's tar stream is stored as a registry blob, and the sink that
//! hashes, compresses and hashes again in one pass.
//!
//! A layer has two digests. The tar stream's sha256 is its `diff_id` in the image config; the
//! blob's (the compressed bytes, or the tar itself when uncompressed) is its digest in the manifest
//! and its key in `layerLocations`. [`LayerSink`] takes the tar stream as it is written: it hashes
//! it, hands it to the compressor, and the compressor's output goes through a
//! [`HashingSink`] (sha256, md5, size) into the file. Memory stays bounded whatever the layer.
//!
//! The bytes never depend on the number of threads, so both cores can work on a large layer:
//! - gzip: the gzp crate compresses independent blocks of [`GZIP_BLOCK`] bytes in parallel (the
//!   scheme of pigz) and joins them into one gzip member; block edges depend on the input only.
//!   Without a dictionary carried across blocks (gzp needs a C zlib for that), 1 MiB blocks cost
//!   under 0.1 % of ratio against one stream (docs/evaluation.md).
//! - zstd: always libzstd's multi-threaded mode, whose output is the same for any number of
//!   workers (its single-threaded mode writes other bytes, so it is never used).
//!
//! The crates are pinned in Cargo.lock, and the tests below hold the digests of a fixed input for
//! each compression: a dependency update that changes bytes fails there, loudly, instead of
//! silently splitting every user's layers.

use std::fs::File;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::{Digests, HashingSink};

/// gzip level: on a real closure, 0.286 of the bytes at 1.4 times the speed of level 6 (0.274);
/// docs/evaluation.md.
pub const GZIP_LEVEL: u32 = 3;
/// Input bytes per gzip block.
pub const GZIP_BLOCK: usize = 1 << 20;
/// zstd level: zstd's default.
pub const ZSTD_LEVEL: i32 = 3;

/// How a layer's tar stream is stored as a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// The tar stream itself: the format of Nixery (2019), byte for byte.
    None,
    #[default]
    Gzip,
    Zstd,
}

impl Compression {
    pub const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zstd];

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    pub fn from_name(name: &str) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl std::str::FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Compression, String> {
        Compression::from_name(s).ok_or_else(|| {
            format!("unknown compression `{s}`; expected one of {}", Compression::ALL.map(Compression::name).join(", "))
        })
    }
}

/// What a layer's pass produced: the blob's digests, and the sha256 of the tar stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDigests {
    pub blob: Digests,
    /// Lower-case hex sha256 of the uncompressed tar stream.
    pub diff_id: String,
}

/// The compressor's output: into the hashing sink, which it shares with [`LayerSink::finish`]
/// (gzp's writer runs on a thread of its own and hands the writer back only at the end).
#[derive(Clone)]
struct BlobWriter(Arc<Mutex<Option<HashingSink>>>);

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut guard = self.0.lock().map_err(|_| io::Error::other("blob writer poisoned"))?;
        guard.as_mut().ok_or_else(|| io::Error::other("blob writer closed"))?.write(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Encoder {
    None,
    Gzip(gzp::par::compress::ParCompress<'static, gzp::deflate::Gzip, BlobWriter>),
    Zstd(zstd::stream::write::Encoder<'static, BlobWriter>),
}

/// Takes a layer's tar stream and writes its blob: see the module's documentation.
pub struct LayerSink {
    compression: Compression,
    /// The blob's sink; for `None` the tar stream goes straight into it.
    blob: Arc<Mutex<Option<HashingSink>>>,
    encoder: Encoder,
    diff: Sha256,
    /// Where a read lands before it is hashed and compressed.
    buffer: Vec<u8>,
}

/// Threads a compressor may use: `NIX_BUILD_CORES` inside a Nix build (0 means all), else the
/// machine's. The bytes do not depend on it.
fn threads() -> usize {
    let all = std::thread::available_parallelism().map_or(1, usize::from);
    match std::env::var("NIX_BUILD_CORES").ok().and_then(|c| c.parse::<usize>().ok()) {
        Some(0) | None => all,
        Some(n) => n.min(all),
    }
}

impl LayerSink {
    /// A sink writing the blob to `file` (none: only the digests).
    pub fn new(compression: Compression, file: Option<File>) -> io::Result<LayerSink> {
        let blob = Arc::new(Mutex::new(Some(HashingSink::new(file))));
        let writer = BlobWriter(Arc::clone(&blob));
        let encoder = match compression {
            Compression::None => Encoder::None,
            Compression::Gzip => Encoder::Gzip(
                gzp::par::compress::ParCompressBuilder::<gzp::deflate::Gzip>::new()
                    .num_threads(threads())
                    .and_then(|b| b.buffer_size(GZIP_BLOCK))
                    .map_err(io::Error::other)?
                    .compression_level(flate2::Compression::new(GZIP_LEVEL))
                    .from_writer(writer),
            ),
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(writer, ZSTD_LEVEL)?;
                // Multi-threaded mode for any machine, even with one worker: see the module doc.
                e.multithread(threads().max(1) as u32)?;
                e.include_checksum(false)?;
                Encoder::Zstd(e)
            }
        };
        Ok(LayerSink { compression, blob, encoder, diff: Sha256::new(), buffer: Vec::new() })
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Appends tar bytes.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::None => self.blob.lock().map_err(|_| io::Error::other("blob writer poisoned"))?.as_mut().expect("open").write(bytes),
            Encoder::Gzip(e) => {
                self.diff.update(bytes);
                e.write_all(bytes)
            }
            Encoder::Zstd(e) => {
                self.diff.update(bytes);
                e.write_all(bytes)
            }
        }
    }

    /// Appends up to `len` bytes read from `reader`; returns how many it got before end of file.
    pub fn copy_from(&mut self, reader: &mut impl io::Read, len: u64) -> io::Result<u64> {
        if let Encoder::None = self.encoder {
            let mut guard = self.blob.lock().map_err(|_| io::Error::other("blob writer poisoned"))?;
            return guard.as_mut().expect("open").copy_from(reader, len);
        }
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.resize(GZIP_BLOCK, 0);
        let mut left = len;
        let result = loop {
            if left == 0 {
                break Ok(len);
            }
            let want = buffer.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match reader.read(&mut buffer[..want]) {
                Ok(0) => break Ok(len - left),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            };
            if let Err(e) = self.write(&buffer[..n]) {
                break Err(e);
            }
            left -= n as u64;
        };
        self.buffer = buffer;
        result
    }

    /// Ends the stream: flushes the compressor and waits for every thread.
    pub fn finish(self) -> io::Result<(LayerDigests, Option<File>)> {
        let diff = self.diff;
        match self.encoder {
            Encoder::None => {}
            Encoder::Gzip(mut e) => {
                gzp::ZWriter::finish(&mut e).map_err(io::Error::other)?;
            }
            Encoder::Zstd(e) => {
                e.finish()?;
            }
        }
        let sink = self.blob.lock().map_err(|_| io::Error::other("blob writer poisoned"))?.take().expect("finished once");
        let (blob, file) = sink.finish()?;
        let diff_id = match self.compression {
            Compression::None => blob.sha256.clone(),
            _ => diff.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        };
        Ok((LayerDigests { blob, diff_id }, file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A fixed input of 3 MiB and a little, with the mix of a layer: text, runs and noise.
    fn input() -> Vec<u8> {
        let mut v = Vec::new();
        let mut x: u32 = 1;
        while v.len() < 3 * (1 << 20) + 4321 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            match (x >> 16) % 4 {
                0 => v.extend_from_slice(b"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-glibc-2.40/lib/libc.so.6\n"),
                1 => v.extend(std::iter::repeat_n(0u8, (x >> 20) as usize % 700)),
                _ => v.extend((0..64).map(|i| (x >> (i % 24)) as u8)),
            }
        }
        v
    }

    fn pass(compression: Compression, data: &[u8], cores: &str) -> (LayerDigests, Vec<u8>) {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("blob");
        // The thread count comes from NIX_BUILD_CORES; tests run in parallel, so set it for this
        // call only through a lock.
        static ENV: Mutex<()> = Mutex::new(());
        let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: every test that reads or sets NIX_BUILD_CORES holds ENV.
        unsafe { std::env::set_var("NIX_BUILD_CORES", cores) };
        let mut sink = LayerSink::new(compression, Some(File::create(&path).unwrap())).unwrap();
        sink.write(&data[..1000]).unwrap();
        sink.copy_from(&mut &data[1000..], u64::MAX).unwrap();
        let (digests, _) = sink.finish().unwrap();
        unsafe { std::env::remove_var("NIX_BUILD_CORES") };
        (digests, std::fs::read(&path).unwrap())
    }

    #[test]
    fn every_compression_round_trips_with_both_digests() {
        let data = input();
        let diff = crate::digest::digest_bytes(&data).sha256;
        for c in Compression::ALL {
            let (d, blob) = pass(c, &data, "2");
            assert_eq!(d.diff_id, diff, "{c:?}");
            assert_eq!(d.blob, crate::digest::digest_bytes(&blob), "{c:?}");
            let back = match c {
                Compression::None => blob.clone(),
                Compression::Gzip => {
                    let mut out = Vec::new();
                    flate2::read::MultiGzDecoder::new(&blob[..]).read_to_end(&mut out).unwrap();
                    out
                }
                Compression::Zstd => zstd::decode_all(&blob[..]).unwrap(),
            };
            assert!(back == data, "{c:?} does not give the input back");
            assert!(c == Compression::None || blob.len() < data.len() / 2, "{c:?}: {} of {}", blob.len(), data.len());
        }
    }

    /// The bytes of each compression are pinned, and the same for 1, 2 and 4 threads. An update of
    /// gzp, flate2, zlib-rs or zstd that changes them fails here.
    #[test]
    fn compressed_bytes_are_pinned_and_independent_of_the_thread_count() {
        let data = input();
        let (mut got, mut want) = (Vec::new(), Vec::new());
        for (c, pinned) in [
            (Compression::None, "4c9a1e8beeb9abf502404b981df7f3d60943030b4f948bfd1a0aa6ce3f6b9de0"),
            (Compression::Gzip, "53366a9cf48a1f064b41383e84164e43ba7a4646c5f1324b20c911f00017cd60"),
            (Compression::Zstd, "8c048a617e6f10f1efbb5467bbe409d77d062195847bd34e96d0799ec233a0d3"),
        ] {
            let one = pass(c, &data, "1");
            for cores in ["2", "4"] {
                assert!(pass(c, &data, cores).1 == one.1, "{c:?}: {cores} threads give other bytes than one");
            }
            got.push((c, one.0.blob.sha256));
            want.push((c, pinned.to_string()));
        }
        assert_eq!(got, want);
    }
}
