//! The `s3://BUCKET/PREFIX` target: the read path as objects in any
//! S3-compatible store, through Apache Arrow's `object_store` crate.
//!
//! Endpoint, region and credentials come from the standard `AWS_*`
//! variables (`AWS_ENDPOINT_URL` or `AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, ...). Plain HTTP is
//! allowed only to a loopback endpoint unless `AWS_ALLOW_HTTP=true`. One
//! PUT writes an object whole; each carries its Content-Type and
//! Cache-Control, which the bucket then serves.

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload};

use super::{Kind, PublishError};

/// A bucket (and key prefix) the read path is published into.
#[derive(Debug)]
pub struct S3Target {
    store: AmazonS3,
    prefix: String,
}

/// Is `endpoint` an http URL to this machine?
fn loopback_http(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl S3Target {
    /// Configures the client; makes no request.
    pub fn open(bucket: &str, prefix: &str) -> Result<S3Target, PublishError> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if builder
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .is_some_and(|e| loopback_http(&e))
        {
            builder = builder.with_allow_http(true);
        }
        let store = builder
            .build()
            .map_err(|e| PublishError::S3(e.to_string()))?;
        Ok(S3Target {
            store,
            prefix: prefix.to_owned(),
        })
    }

    /// The object key for a publication path.
    pub fn key(&self, path: &str) -> Result<Path, PublishError> {
        let full = if self.prefix.is_empty() {
            path.to_owned()
        } else {
            format!("{}/{path}", self.prefix)
        };
        Path::parse(&full).map_err(|e| PublishError::Write {
            path: full.clone(),
            reason: e.to_string(),
        })
    }

    pub async fn put(&self, path: &str, bytes: Vec<u8>, kind: Kind) -> Result<(), PublishError> {
        let key = self.key(path)?;
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, kind.content_type().into());
        attributes.insert(Attribute::CacheControl, kind.cache_control().into());
        let opts = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        self.store
            .put_opts(&key, PutPayload::from(bytes), opts)
            .await
            .map_err(|e| PublishError::Write {
                path: key.to_string(),
                reason: e.to_string(),
            })?;
        Ok(())
    }

    pub async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, PublishError> {
        let key = self.key(path)?;
        let read_err = |e: object_store::Error| PublishError::Read {
            path: key.to_string(),
            reason: e.to_string(),
        };
        match self.store.get(&key).await {
            Ok(found) => Ok(Some(found.bytes().await.map_err(read_err)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(read_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::loopback_http;

    // Plain HTTP is allowed to this machine only.
    #[test]
    fn loopback_endpoints() {
        assert!(loopback_http("http://127.0.0.1:9000"));
        assert!(loopback_http("http://localhost:9000/"));
        assert!(loopback_http("http://[::1]:9000"));
        assert!(!loopback_http("http://s3.example.com"));
        assert!(!loopback_http("https://127.0.0.1:9000"));
        assert!(!loopback_http("http://10.0.0.1:9000"));
    }
}
