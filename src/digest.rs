//! Digests of a byte stream computed while it is written: sha256 (hex), md5 (base64) and size.
//!
//! A registry needs a layer's sha256; Nixery-style servers also compare a base64 md5. Computing
//! them one after the other, as Nixery (2019) did (`sha256sum`, then `openssl dgst -md5`), reads every
//! layer three times and costs the sum of both hashes. Here the bytes are produced once into
//! fixed-size chunks, and each chunk is handed to two threads: one runs md5, the slowest step; the
//! other runs sha256 and writes the chunk to the output file. Throughput is then bounded by md5
//! alone. Chunks come from a small fixed pool and return to it when both threads are done, which
//! is what keeps memory flat whatever the layer size: the producer waits for a free chunk.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use base64::Engine;
use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Bytes per chunk and chunks in flight: 8 MiB in all.
const CHUNK: usize = 1 << 20;
const POOL: usize = 8;

/// What a registry needs to know of a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digests {
    /// Lower-case hex sha256.
    pub sha256: String,
    /// Base64 (standard, padded) of the binary md5, as Nixery's server expects.
    pub md5: String,
    pub size: u64,
}

struct Chunk {
    data: Vec<u8>,
    filled: usize,
    pool: SyncSender<Vec<u8>>,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // The pool's receiver is gone only when the sink is finished; nothing to return then.
        let _ = self.pool.try_send(std::mem::take(&mut self.data));
    }
}

/// What the sha256 thread hands back: the digest and the file it wrote, or the write error.
type ShaResult = io::Result<([u8; 32], Option<File>)>;

/// A sink that hashes everything written to it and copies it to an optional file.
pub struct HashingSink {
    current: Vec<u8>,
    filled: usize,
    size: u64,
    pool_tx: SyncSender<Vec<u8>>,
    pool_rx: Receiver<Vec<u8>>,
    md5_tx: Option<SyncSender<Arc<Chunk>>>,
    sha_tx: Option<SyncSender<Arc<Chunk>>>,
    md5_thread: Option<JoinHandle<[u8; 16]>>,
    sha_thread: Option<JoinHandle<ShaResult>>,
}

impl HashingSink {
    /// Starts the hashing threads; `file`, if any, receives every byte.
    pub fn new(file: Option<File>) -> HashingSink {
        let (pool_tx, pool_rx) = sync_channel(POOL);
        for _ in 1..POOL {
            pool_tx.send(vec![0u8; CHUNK]).expect("pool has room");
        }
        let (md5_tx, md5_rx) = sync_channel::<Arc<Chunk>>(POOL);
        let (sha_tx, sha_rx) = sync_channel::<Arc<Chunk>>(POOL);
        let md5_thread = std::thread::spawn(move || {
            let mut h = Md5::new();
            for c in md5_rx {
                h.update(&c.data[..c.filled]);
            }
            h.finalize().into()
        });
        let sha_thread = std::thread::spawn(move || {
            let mut file = file;
            let mut h = Sha256::new();
            for c in sha_rx {
                h.update(&c.data[..c.filled]);
                if let Some(f) = file.as_mut() {
                    // Returning drops the receiver: the producer sees it and stops early.
                    f.write_all(&c.data[..c.filled])?;
                }
            }
            Ok((h.finalize().into(), file))
        });
        HashingSink {
            current: vec![0u8; CHUNK],
            filled: 0,
            size: 0,
            pool_tx,
            pool_rx,
            md5_tx: Some(md5_tx),
            sha_tx: Some(sha_tx),
            md5_thread: Some(md5_thread),
            sha_thread: Some(sha_thread),
        }
    }

    /// Bytes accepted so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends bytes.
    pub fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = bytes.len().min(CHUNK - self.filled);
            self.current[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            self.size += n as u64;
            bytes = &bytes[n..];
            if self.filled == CHUNK {
                self.ship()?;
            }
        }
        Ok(())
    }

    /// Appends up to `len` bytes read straight into the chunks from `reader` (no extra copy);
    /// returns how many it got before end of file.
    pub fn copy_from(&mut self, reader: &mut impl Read, len: u64) -> io::Result<u64> {
        let mut left = len;
        while left > 0 {
            let room = (CHUNK - self.filled).min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match reader.read(&mut self.current[self.filled..self.filled + room]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.filled += n;
            self.size += n as u64;
            left -= n as u64;
            if self.filled == CHUNK {
                self.ship()?;
            }
        }
        Ok(len - left)
    }

    fn ship(&mut self) -> io::Result<()> {
        if self.filled == 0 {
            return Ok(());
        }
        let next = self.pool_rx.recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
        let data = std::mem::replace(&mut self.current, next);
        let chunk = Arc::new(Chunk { data, filled: self.filled, pool: self.pool_tx.clone() });
        self.filled = 0;
        let md5_ok = self.md5_tx.as_ref().expect("sink open").send(Arc::clone(&chunk)).is_ok();
        let sha_ok = self.sha_tx.as_ref().expect("sink open").send(chunk).is_ok();
        if md5_ok && sha_ok { Ok(()) } else { Err(self.stop()) }
    }

    /// The writer thread failed: collect its error.
    fn stop(&mut self) -> io::Error {
        self.md5_tx.take();
        self.sha_tx.take();
        match self.sha_thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("a hashing thread stopped unexpectedly"),
        }
    }

    /// Flushes the last chunk, waits for both threads, and returns the digests and the file.
    pub fn finish(mut self) -> io::Result<(Digests, Option<File>)> {
        self.ship()?;
        self.md5_tx.take();
        self.sha_tx.take();
        let md5 = self.md5_thread.take().expect("open").join().map_err(|_| io::Error::other("md5 thread panicked"))?;
        let (sha, file) =
            self.sha_thread.take().expect("open").join().map_err(|_| io::Error::other("sha256 thread panicked"))??;
        let digests = Digests {
            sha256: sha.iter().map(|b| format!("{b:02x}")).collect(),
            md5: base64::engine::general_purpose::STANDARD.encode(md5),
            size: self.size,
        };
        Ok((digests, file))
    }
}

impl Drop for HashingSink {
    fn drop(&mut self) {
        self.md5_tx.take();
        self.sha_tx.take();
        if let Some(t) = self.md5_thread.take() {
            let _ = t.join();
        }
        if let Some(t) = self.sha_thread.take() {
            let _ = t.join();
        }
    }
}

/// Digests of an existing file, read once.
pub fn digest_file(path: &std::path::Path) -> crate::Result<Digests> {
    let rerr = |source| crate::Error::Read { path: path.to_path_buf(), source };
    let mut f = File::open(path).map_err(rerr)?;
    let mut sink = HashingSink::new(None);
    sink.copy_from(&mut f, u64::MAX).map_err(rerr)?;
    Ok(sink.finish().map_err(rerr)?.0)
}

/// Digests of bytes in memory (small files such as the image config).
pub fn digest_bytes(bytes: &[u8]) -> Digests {
    Digests {
        sha256: Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect(),
        md5: base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes)),
        size: bytes.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_digests_equal_one_shot_digests_across_chunk_edges() {
        let data: Vec<u8> = (0..(3 * CHUNK + 12345)).map(|i| (i * 7 % 251) as u8).collect();
        let mut sink = HashingSink::new(None);
        sink.write(&data[..100]).unwrap();
        sink.copy_from(&mut &data[100..CHUNK + 7], u64::MAX).unwrap();
        sink.write(&data[CHUNK + 7..]).unwrap();
        let (d, _) = sink.finish().unwrap();
        assert_eq!(d, digest_bytes(&data));
        assert_eq!(digest_bytes(b"abc").md5, "kAFQmDzST7DWlj99KOF/cg==");
        assert_eq!(digest_bytes(b"").sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
