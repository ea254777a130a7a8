//! Prometheus metrics in the OpenMetrics text format, with the
//! `prometheus-client` crate. Each server keeps its own [`Registry`]
//! (several servers share one process in the demo and the tests), counts
//! its HTTP requests by method, route template and status, and times them
//! by route. Route templates (`/api/v1/delivery/{tid}`), never concrete
//! paths, are labels: metrics must not carry TIDs or keys.

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::registry::Registry;

/// The content type of the metrics page.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs to about 3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Request counts and latencies of one server.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            requests: Family::default(),
            seconds: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl HttpMetrics {
    /// Registers `http_requests` (a counter) and `http_request_seconds` (a
    /// histogram) in `registry`; the same values show in every registry
    /// they are registered in.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "build",
            "The version and commit this server was built from",
            prometheus_client::metrics::info::Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("commit", crate::ops::COMMIT),
            ]),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            self.requests.clone(),
        );
        registry.register(
            "http_request_seconds",
            "Time to answer an HTTP request, by route",
            self.seconds.clone(),
        );
    }

    /// Counts and times every request `router` answers, including its
    /// refusals (unknown routes count under the route `unmatched`).
    pub fn layer<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        let metrics = self.clone();
        router.layer(middleware::from_fn(move |req: Request, next: Next| {
            let metrics = metrics.clone();
            async move { metrics.observe(req, next).await }
        }))
    }

    async fn observe(&self, req: Request, next: Next) -> Response {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str)
            .to_owned();
        // Clients choose methods freely: only the standard ones become
        // labels, so that no client can grow the page without bound.
        let method = match *req.method() {
            Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::DELETE => {
                req.method().as_str()
            }
            _ => "other",
        }
        .to_owned();
        let started = Instant::now();
        let response = next.run(req).await;
        let elapsed = started.elapsed();
        self.seconds
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        // One line per request: the route's template (never the path, which
        // may carry a TID or a key), the status, the refusal's code.
        let code = response
            .extensions()
            .get::<crate::error::ErrorCode>()
            .map_or("", |c| c.0);
        tracing::info!(
            target: "acd_serve::request",
            method = %method,
            route = %route,
            status = response.status().as_u16(),
            ms = format_args!("{:.3}", elapsed.as_secs_f64() * 1000.0),
            code,
            "request"
        );
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status: response.status().as_u16(),
            })
            .inc();
        response
    }
}

/// A count or a size as a gauge's value (gauges hold an `i64`; a value
/// beyond it shows as `i64::MAX`).
pub fn gauge_value<T: TryInto<i64>>(v: T) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

/// The metrics page of `registry`.
pub fn render(registry: &Registry) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, registry) {
        return crate::ApiError(acd_core::error::DomainError::internal(format!(
            "encoding metrics: {e}"
        )))
        .into_response();
    }
    let mut response = (StatusCode::OK, Body::from(text)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// The value of the sample `name` (with its `_total` suffix for a
/// counter, and its labels as rendered, if any) on a metrics page.
pub fn read(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    // Requests are counted by route template (never the concrete path) and
    // status, refusals and unknown routes included; the page is OpenMetrics.
    #[tokio::test]
    async fn counts_requests_by_route_template_and_status() {
        let mut registry = Registry::default();
        let http = HttpMetrics::default();
        http.register(&mut registry);
        let gauge = Gauge::<i64>::default();
        registry.register("tree_size", "Entries", gauge.clone());
        gauge.set(7);
        let app =
            http.layer(Router::new().route("/item/{id}", get(|| async { StatusCode::NOT_FOUND })));
        for uri in ["/item/secret-1", "/item/secret-2", "/nowhere"] {
            let req = Request::get(uri).body(Body::empty()).unwrap();
            app.clone().oneshot(req).await.unwrap();
        }
        for method in ["FOO1", "FOO2"] {
            let req = Request::builder()
                .method(method)
                .uri("/nowhere")
                .body(Body::empty())
                .unwrap();
            app.clone().oneshot(req).await.unwrap();
        }
        let page = render(&registry);
        assert_eq!(page.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let bytes = page.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(
            read(
                &text,
                "http_requests_total{method=\"GET\",route=\"/item/{id}\",status=\"404\"}"
            ),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            read(
                &text,
                "http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            read(
                &text,
                "http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"}"
            ),
            Some(2.0),
            "{text}"
        );
        assert!(!text.contains("FOO"), "{text}");
        assert_eq!(read(&text, "tree_size"), Some(7.0));
        assert!(text.contains("http_request_seconds_bucket"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
