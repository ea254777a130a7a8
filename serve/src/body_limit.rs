//! Per-route body limits, enforced before and while the body streams: a
//! declared `Content-Length` over the route's limit is answered
//! `413 too_large` at once, before a byte of the body is read; a body
//! without one (chunked) is cut off where it passes the limit (answered
//! 413 by [`ApiJson`](crate::ApiJson) and axum's extractors). Either way
//! the connection closes after the answer, so the rest is never read.
//!
//! One layer on the whole router holds every route's limit, because a
//! router's layer runs before a route's own and would refuse first.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use acd_core::error::DomainError;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{Request, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::error::ApiError;

/// The body limits of a router: `.layer(BodyLimit::max(n).route(path, m))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyLimit {
    max: usize,
    routes: Arc<[(&'static str, usize)]>,
}

impl BodyLimit {
    /// Bodies of at most `max` bytes on every route not named otherwise.
    pub fn max(max: usize) -> Self {
        BodyLimit {
            max,
            routes: Arc::from([]),
        }
    }

    /// Bodies of at most `max` bytes on the route `path` (as given to
    /// `Router::route`).
    pub fn route(self, path: &'static str, max: usize) -> Self {
        let mut routes = self.routes.to_vec();
        routes.push((path, max));
        BodyLimit {
            max: self.max,
            routes: Arc::from(routes),
        }
    }

    fn limit_of(&self, req: &Request<Body>) -> usize {
        let path = req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| req.uri().path(), MatchedPath::as_str);
        self.routes
            .iter()
            .find(|(p, _)| *p == path)
            .map_or(self.max, |(_, max)| *max)
    }
}

impl<S> Layer<S> for BodyLimit {
    type Service = BodyLimitService<<DefaultBodyLimit as Layer<S>>::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        // The body is limited here; axum's own default (2 MB) steps aside.
        BodyLimitService {
            inner: DefaultBodyLimit::disable().layer(inner),
            limits: self.clone(),
        }
    }
}

/// The service of [`BodyLimit`].
#[derive(Debug, Clone)]
pub struct BodyLimitService<S> {
    inner: S,
    limits: BodyLimit,
}

/// The declared length of `req`'s body, if it has a readable one.
fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl<S> Service<Request<Body>> for BodyLimitService<S>
where
    S: Service<Request<Body>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = LimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let max = self.limits.limit_of(&req);
        match declared_length(&req) {
            Some(n) if n > max as u64 => LimitFuture::Refused {
                answer: Some(
                    ApiError(DomainError::too_large(format!(
                        "the body is {n} bytes; this endpoint takes at most {max}"
                    )))
                    .into_response(),
                ),
            },
            _ => {
                let req = req.map(|b| Body::new(http_body_util::Limited::new(b, max)));
                LimitFuture::Inner {
                    inner: self.inner.call(req),
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`BodyLimitService`].
    #[project = LimitProj]
    pub enum LimitFuture<F> {
        Refused { answer: Option<Response> },
        Inner { #[pin] inner: F },
    }
}

impl<F, E> Future for LimitFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            LimitProj::Refused { answer } => match answer.take() {
                Some(a) => Poll::Ready(Ok(a)),
                None => Poll::Pending,
            },
            LimitProj::Inner { inner } => inner.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::post;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route(
                "/big",
                post(|b: axum::body::Bytes| async move { b.len().to_string() }),
            )
            .route(
                "/small",
                post(|crate::ApiJson(v): crate::ApiJson<serde_json::Value>| async move {
                    v.to_string()
                }),
            )
            .layer(BodyLimit::max(10).route("/big", 100))
    }

    async fn send(req: Request<Body>) -> (u16, Option<String>, String) {
        let r = app().oneshot(req).await.unwrap_or_else(|e| match e {});
        let status = r.status().as_u16();
        let connection = r
            .headers()
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = r
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        (
            status,
            connection,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    fn post_to(uri: &str, declared: Option<u64>, body: Body) -> Request<Body> {
        let mut r = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
        if let Some(n) = declared {
            r = r.header(header::CONTENT_LENGTH, n);
        }
        r.body(body).unwrap_or_else(|e| panic!("{e}"))
    }

    // A declared length over the route's limit is refused without polling
    // the body (which here would never end); the route's own limit
    // overrides the router's; a streamed body is cut off at the limit.
    #[tokio::test]
    async fn declared_and_streamed_bodies_over_the_limit_are_413() {
        let never = || Body::new(Never);
        let (s, c, text) = send(post_to("/big", Some(101), never())).await;
        assert_eq!((s, c.as_deref()), (413, Some("close")), "{text}");
        assert!(text.contains("too_large"), "{text}");
        let (s, _, text) = send(post_to("/small", Some(11), never())).await;
        assert_eq!(s, 413, "{text}");

        let (s, _, text) = send(post_to("/big", Some(100), Body::from(vec![b'x'; 100]))).await;
        assert_eq!((s, text.as_str()), (200, "100"));
        let chunked = Body::new(Chunks { size: 60, times: 2 });
        let (s, _, text) = send(post_to("/big", None, chunked)).await;
        assert_eq!(s, 413, "{text}");
        let (s, _, text) = send(post_to("/small", None, Body::from("[1,2,3,4,5,6]"))).await;
        assert_eq!(s, 413, "{text}");
        assert!(text.contains("too_large"), "{text}");
        let (s, _, text) = send(post_to("/small", None, Body::from("[1]"))).await;
        assert_eq!((s, text.as_str()), (200, "[1]"));
    }

    /// A body that never yields a byte.
    struct Never;
    impl hyper::body::Body for Never {
        type Data = axum::body::Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
            Poll::Pending
        }
    }

    /// Chunks of `size` bytes, `times` times, with no declared length.
    struct Chunks {
        size: usize,
        times: usize,
    }
    impl hyper::body::Body for Chunks {
        type Data = axum::body::Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
            if self.times == 0 {
                return Poll::Ready(None);
            }
            self.times -= 1;
            let chunk = axum::body::Bytes::from(vec![b'x'; self.size]);
            Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk))))
        }
    }
}
