//! A client of the log's HTTP API. Nothing it returns is taken on trust:
//! every entry comes with an inclusion proof checked against a checkpoint
//! signed by the log's key.

pub use crate::error::ClientError;
use crate::error::{read_json, read_text};
use crate::retry::RetryPolicy;
use acd_core::checkpoint::SignedCheckpoint;
use acd_core::entry::{LogEntry, Tid};
use acd_core::log_api::{
    AbortRequest, CommitBatchResponse, CommitRequest, ConsistencyProof, EntryProof, ErrorBody,
};
use acd_core::merkle;
use acd_core::note::NoteVerifier;
use acd_core::proof::{self, WitnessPolicy};

pub use acd_core::proof::VerifiedEntry;

/// Checks an [`EntryProof`] completely and offline: checkpoint signature by
/// `log`, leaf hash of the entry bytes, inclusion proof to the root (see
/// [`acd_core::proof::verify_entry_proof`]; no witness policy).
pub fn verify_entry_proof(
    proof: &EntryProof,
    log: &NoteVerifier,
) -> Result<VerifiedEntry, ClientError> {
    Ok(proof::verify_entry_proof(
        proof,
        log,
        &WitnessPolicy::none(),
    )?)
}

/// The same, for a checkpoint already opened (and so already verified).
pub fn verify_entry_under(
    proof: &EntryProof,
    checkpoint: &SignedCheckpoint,
) -> Result<LogEntry, ClientError> {
    Ok(proof::verify_entry_under(proof, checkpoint)?)
}

/// The log's HTTP client.
#[derive(Debug, Clone)]
pub struct LogClient {
    http: reqwest::Client,
    base: String,
    verifier: NoteVerifier,
    retry: RetryPolicy,
}

impl LogClient {
    /// `base` is the log's URL, e.g. `http://127.0.0.1:8700`.
    pub fn new(base: &str, verifier: NoteVerifier) -> Self {
        Self::with_http(crate::http_client(), base, verifier)
    }

    pub fn with_http(http: reqwest::Client, base: &str, verifier: NoteVerifier) -> Self {
        LogClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            verifier,
            retry: RetryPolicy::NONE,
        }
    }

    /// Repeats every request after a transient failure as `policy` says:
    /// reads, and appends whose repetition is answered with the entry
    /// already logged.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Fetches the log's vkey from `GET /vkey` (trust on first use; prefer
    /// a vkey obtained out of band).
    pub async fn fetch_vkey(base: &str) -> Result<NoteVerifier, ClientError> {
        let base = base.trim_end_matches('/');
        let text = async { read_text(reqwest::get(format!("{base}/vkey")).await?).await }
            .await
            .map_err(|e| e.not_a("log", base))?;
        NoteVerifier::from_vkey(text.trim())
            .map_err(|e| ClientError::Invalid(format!("{base} is not an acd log ({e})")))
    }

    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    async fn json<T: serde::de::DeserializeOwned>(
        resp: reqwest::Response,
    ) -> Result<T, ClientError> {
        read_json(resp).await
    }

    /// Appends a commit (P4); unverified, for callers that verify in bulk.
    pub async fn commit_unverified(&self, req: &CommitRequest) -> Result<EntryProof, ClientError> {
        let url = format!("{}/api/v1/commit", self.base);
        self.retry
            .run(|| async { Self::json(self.http.post(&url).json(req).send().await?).await })
            .await
    }

    /// [`LogClient::commit_unverified`] with the 152-byte binary body
    /// instead of JSON.
    pub async fn commit_binary_unverified(
        &self,
        req: &CommitRequest,
    ) -> Result<EntryProof, ClientError> {
        let url = format!("{}/api/v1/commit", self.base);
        self.post_octets(&url, req.to_bytes().to_vec()).await
    }

    /// POSTs `body` as `application/octet-stream` (repeated as the retry
    /// policy says) and reads the JSON answer.
    async fn post_octets<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        body: Vec<u8>,
    ) -> Result<T, ClientError> {
        self.retry
            .run(|| async {
                let resp = self
                    .http
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone())
                    .send()
                    .await?;
                Self::json(resp).await
            })
            .await
    }

    /// Appends up to [`acd_core::log_api::MAX_BATCH_COMMITS`] commits in
    /// one request (binary bodies end to end); one result per commit, in
    /// order, unverified: the log's refusal of one commit is that commit's
    /// `Err`, and the whole call fails only when the request does.
    pub async fn commit_batch_unverified(
        &self,
        reqs: &[CommitRequest],
    ) -> Result<Vec<Result<EntryProof, ErrorBody>>, ClientError> {
        let url = format!("{}/api/v1/commits", self.base);
        let body: Vec<u8> = reqs.iter().flat_map(|r| r.to_bytes()).collect();
        let answer: CommitBatchResponse = self.post_octets(&url, body).await?;
        if answer.results.len() != reqs.len() {
            return Err(ClientError::Invalid(format!(
                "{} results for {} commits",
                answer.results.len(),
                reqs.len()
            )));
        }
        answer
            .results
            .into_iter()
            .map(|r| match (r.proof, r.error) {
                (Some(p), None) => Ok(Ok(p)),
                (None, Some(e)) => Ok(Err(e)),
                _ => Err(ClientError::Invalid(
                    "a batch result must hold a proof or an error".into(),
                )),
            })
            .collect()
    }

    /// Appends a commit (P4) and verifies the answer.
    pub async fn commit(&self, req: &CommitRequest) -> Result<VerifiedEntry, ClientError> {
        let p = self.commit_unverified(req).await?;
        verify_entry_proof(&p, &self.verifier)
    }

    /// Appends an abort and verifies the answer.
    pub async fn abort(&self, req: &AbortRequest) -> Result<VerifiedEntry, ClientError> {
        let url = format!("{}/api/v1/abort", self.base);
        let p: EntryProof = self
            .retry
            .run(|| async { Self::json(self.http.post(&url).json(req).send().await?).await })
            .await?;
        verify_entry_proof(&p, &self.verifier)
    }

    /// Q1/Q2: the outcome of `tid`, verified; `None` if it has none yet.
    pub async fn transaction(&self, tid: &Tid) -> Result<Option<VerifiedEntry>, ClientError> {
        let url = format!("{}/tx/{tid}", self.base);
        let p: Option<EntryProof> = self
            .retry
            .run(|| async {
                let resp = self.http.get(&url).send().await?;
                if resp.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                Self::json(resp).await.map(Some)
            })
            .await?;
        p.map(|p| verify_entry_proof(&p, &self.verifier))
            .transpose()
    }

    /// The latest checkpoint, signature verified.
    pub async fn checkpoint(&self) -> Result<SignedCheckpoint, ClientError> {
        let url = format!("{}/checkpoint", self.base);
        let text = self
            .retry
            .run(|| async { read_text(self.http.get(&url).send().await?).await })
            .await
            .map_err(|e| e.not_a("log", &self.base))?;
        SignedCheckpoint::open(&text, &self.verifier)
            .map_err(|e| ClientError::Invalid(format!("checkpoint: {e}")))
    }

    /// The log's consistency proof from size `from` to size `to`,
    /// unverified (the caller holds both roots).
    pub async fn consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof, ClientError> {
        let url = format!("{}/api/v1/consistency?from={from}&to={to}", self.base);
        self.retry
            .run(|| async { Self::json(self.http.get(&url).send().await?).await })
            .await
    }

    /// Proves that `new` extends `old`, with a consistency proof from the log.
    pub async fn check_consistency(
        &self,
        old: &SignedCheckpoint,
        new: &SignedCheckpoint,
    ) -> Result<(), ClientError> {
        let (from, to) = (old.checkpoint.size, new.checkpoint.size);
        if from == 0 {
            // Every tree extends the empty one; RFC 9162 has no proof for it.
            return Ok(());
        }
        let p = self.consistency(from, to).await?;
        merkle::verify_consistency(
            from,
            to,
            &p.proof,
            &old.checkpoint.root,
            &new.checkpoint.root,
        )
        .map_err(|e| ClientError::Invalid(format!("consistency {from} -> {to}: {e}")))
    }
}
