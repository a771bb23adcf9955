//! A bounded pool of argon2 workers.
//!
//! An argon2id check with the default parameters fills 19 MiB of memory. Run on
//! tokio's blocking pool, as many checks as there are waiting logins ran at once, each
//! allocating its own block; glibc's malloc, once such a block is freed, raises its
//! mmap threshold above it, so later blocks came from its arenas and stayed there: a
//! thousand logins left gigabytes resident. Here a fixed number of threads (one per
//! core by default: more cannot run faster) each own one memory block, allocated once
//! and reused for every hash they compute, so the memory argon2 takes is bounded by
//! `workers × block` whatever the number of logins.
//!
//! Jobs wait in a queue of bounded length; when it is full a job is refused at once
//! ([`PoolError::Busy`]) so that the protocol can answer with a temporary failure
//! instead of letting logins pile up. A job whose caller has gone (the client hung up
//! while waiting) is dropped unrun.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use thiserror::Error;
use tokio::sync::oneshot;

/// Jobs that may wait per worker before new ones are refused: with a check taking a few
/// tens of milliseconds, a full queue is served within seconds.
pub const QUEUE_PER_WORKER: usize = 256;

/// The largest argon2 memory cost (in KiB, the `m` of a PHC string) a stored hash may ask
/// for: 256 MiB. A hash asking for more does not match, rather than letting a stored
/// string make the node allocate without bound.
pub const MAX_M_COST: u32 = 256 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("too many password checks are waiting")]
    Busy,
    #[error("the password worker stopped")]
    Stopped,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

enum Work {
    Verify { password: String, hash: String },
    Hash { password: String },
}

enum Done {
    Verified(bool),
    Hashed(Result<String, PoolError>),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Done>,
}

/// The workers and their queue. Dropping it lets the workers end once the queue is empty.
pub struct Argon2Pool {
    queue: SyncSender<Job>,
    workers: usize,
}

impl Argon2Pool {
    /// `workers` threads (at least one), and at most `queue` jobs waiting beyond those
    /// being computed.
    pub fn new(workers: usize, queue: usize) -> Argon2Pool {
        let workers = workers.max(1);
        let (sender, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..workers {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work(&receiver));
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password worker");
            }
        }
        Argon2Pool {
            queue: sender,
            workers,
        }
    }

    /// The pool every directory of this process shares: one worker per core.
    pub fn shared() -> &'static Argon2Pool {
        static SHARED: OnceLock<Argon2Pool> = OnceLock::new();
        SHARED.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Argon2Pool::new(cores, cores * QUEUE_PER_WORKER)
        })
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Queues a check of `password` against a PHC string. The job is queued (or refused)
    /// before this returns; the future only waits for the answer.
    pub fn verify(
        &self,
        password: &str,
        hash: &str,
    ) -> Result<impl Future<Output = Result<bool, PoolError>> + use<>, PoolError> {
        let answer = self.submit(Work::Verify {
            password: password.to_owned(),
            hash: hash.to_owned(),
        })?;
        Ok(async move {
            match answer.await {
                Ok(Done::Verified(matches)) => Ok(matches),
                Ok(Done::Hashed(_)) | Err(_) => Err(PoolError::Stopped),
            }
        })
    }

    /// Queues the hashing of a new password with the default argon2id parameters.
    pub fn hash(
        &self,
        password: &str,
    ) -> Result<impl Future<Output = Result<String, PoolError>> + use<>, PoolError> {
        let answer = self.submit(Work::Hash {
            password: password.to_owned(),
        })?;
        Ok(async move {
            match answer.await {
                Ok(Done::Hashed(hash)) => hash,
                Ok(Done::Verified(_)) | Err(_) => Err(PoolError::Stopped),
            }
        })
    }

    fn submit(&self, work: Work) -> Result<oneshot::Receiver<Done>, PoolError> {
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send(Job { work, reply }) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_)) => {
                metrics::counter!("postcell_password_checks_refused_total").increment(1);
                Err(PoolError::Busy)
            }
            Err(TrySendError::Disconnected(_)) => Err(PoolError::Stopped),
        }
    }
}

/// One worker: takes jobs until the pool is dropped, reusing one memory block.
fn work(receiver: &Mutex<Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        // The lock is held only while waiting for the next job, so idle workers queue
        // on it and each job goes to one of them.
        let job = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if job.reply.is_closed() {
            continue;
        }
        let done = match &job.work {
            Work::Verify { password, hash } => {
                Done::Verified(verify(password.as_bytes(), hash, &mut memory))
            }
            Work::Hash { password } => Done::Hashed(hash(password.as_bytes(), &mut memory)),
        };
        // The caller may have gone meanwhile; nothing to tell then.
        let _ = job.reply.send(done);
    }
}

/// The first `blocks` blocks of the worker's memory, grown (never shrunk) to fit.
fn blocks(memory: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    &mut memory[..blocks]
}

/// True when `password` gives the output stored in the PHC string `hash`. A malformed
/// string, an unknown algorithm or version, or parameters over [`MAX_M_COST`] never
/// match.
fn verify(password: &[u8], hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST {
        tracing::warn!(
            m_cost = params.m_cost(),
            "a stored password hash asks for too much memory"
        );
        return false;
    }
    let block_count = params.block_count();
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2
        .hash_password_into_with_memory(password, salt, &mut out, blocks(memory, block_count))
        .is_err()
    {
        return false;
    }
    // Output's equality is constant-time.
    Output::new(&out).is_ok_and(|computed| computed == *expected)
}

/// A new argon2id PHC string for `password`, with a random 16-octet salt.
fn hash(password: &[u8], memory: &mut Vec<Block>) -> Result<String, PoolError> {
    let failed = |e: &dyn std::fmt::Display| PoolError::Hash(e.to_string());
    let params = Params::default();
    let salt: [u8; 16] = rand::random();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let block_count = params.block_count();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2
        .hash_password_into_with_memory(password, &salt, &mut out, blocks(memory, block_count))
        .map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(hash.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher;

    /// A cheap hash (64 KiB, one pass) so that debug-build tests stay quick.
    fn small_hash(password: &str) -> String {
        let params = Params::new(64, 1, 1, None).unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes())
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn a_worker_reuses_its_memory_across_parameters() {
        let pool = Argon2Pool::new(1, 8);
        let small = small_hash("first");
        let default = pool.hash("second").unwrap().await.unwrap();
        assert!(default.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        // The one worker goes small, large, small again: each answer is right.
        assert!(pool.verify("first", &small).unwrap().await.unwrap());
        assert!(pool.verify("second", &default).unwrap().await.unwrap());
        assert!(!pool.verify("first", &default).unwrap().await.unwrap());
        assert!(pool.verify("first", &small).unwrap().await.unwrap());
        assert!(!pool.verify("First", &small).unwrap().await.unwrap());
        // A hash made by the argon2 crate's own allocator verifies in the pool, and a
        // pool hash verifies with the crate's own verifier.
        use argon2::PasswordVerifier;
        let parsed = PasswordHash::new(&default).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"second", &parsed)
                .is_ok()
        );
    }

    #[tokio::test]
    async fn malformed_and_oversized_hashes_never_match() {
        let pool = Argon2Pool::new(1, 8);
        assert!(!pool.verify("x", "not a hash").unwrap().await.unwrap());
        assert!(
            !pool
                .verify("x", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ")
                .unwrap()
                .await
                .unwrap()
        );
        let huge = format!(
            "$argon2id$v=19$m={},t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            MAX_M_COST + 1
        );
        assert!(!pool.verify("x", &huge).unwrap().await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_the_rest_are_answered() {
        // One worker, one place in the queue: of six jobs queued in a row while the
        // worker computes a 19 MiB hash, at most two are taken (one running, one
        // waiting) and the others are refused without waiting.
        let pool = Argon2Pool::new(1, 1);
        let hash = pool.hash("secret").unwrap().await.unwrap();
        let mut accepted = Vec::new();
        let mut refused = 0;
        for _ in 0..6 {
            match pool.verify("secret", &hash) {
                Ok(answer) => accepted.push(answer),
                Err(PoolError::Busy) => refused += 1,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert!(refused >= 4, "refused {refused}");
        for answer in accepted {
            assert!(answer.await.unwrap());
        }
        // Once the queue has drained, jobs are taken again.
        assert!(pool.verify("secret", &hash).unwrap().await.unwrap());
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_does_not_stop_the_pool() {
        let pool = Argon2Pool::new(1, 4);
        let hash = pool.hash("secret").unwrap().await.unwrap();
        for _ in 0..3 {
            drop(pool.verify("secret", &hash).unwrap());
        }
        assert!(pool.verify("secret", &hash).unwrap().await.unwrap());
        assert!(!pool.verify("wrong", &hash).unwrap().await.unwrap());
    }
}
