//! The plain load generator: the same HTTP stack as tenantgate (reqwest, one pooled
//! client), the same endpoints and the same requests per check as tenantgate sends to
//! this (correct) target (read: B; list: B; write: verify, B's write, verify; A's
//! control of a read once per item and of a list once, and the never-issued twin of a
//! read and of a write once, which tenantgate's later checks share), but no templates,
//! no verdicts, no reports. It checks statuses only, so a broken target cannot make it
//! look fast.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::workload::{SEEDED, Shape, first_control, shape};

/// How checks are scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Every check concurrently, `jobs` at once.
    AllConcurrent,
    /// Like tenantgate today: reads and lists concurrently, then writes one at a time.
    WritesSerial,
}

/// What a load-generator run measured.
pub struct LoadResult {
    pub wall: Duration,
    pub requests: u64,
    /// Answers whose status was not the expected one (must be 0).
    pub wrong: u64,
}

struct Org {
    auth: String,
}

struct Plan {
    client: reqwest::Client,
    base: String,
    a: Org,
    b: Org,
    items: Vec<String>,
    wrong: AtomicU64,
    sent: AtomicU64,
}

async fn send(
    p: &Plan,
    method: reqwest::Method,
    path: &str,
    org: &Org,
    body: Option<&Value>,
    want: u16,
) {
    let mut rb = p
        .client
        .request(method, format!("{}{path}", p.base))
        .header("authorization", &org.auth);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    p.sent.fetch_add(1, Ordering::Relaxed);
    let ok = match rb.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            r.bytes().await.is_ok() && status == want
        }
        Err(_) => false,
    };
    if !ok {
        p.wrong.fetch_add(1, Ordering::Relaxed);
    }
}

async fn check(p: &Plan, i: usize) {
    use reqwest::Method;
    let item = format!("/items/{}", p.items[i % SEEDED]);
    let twin = format!("/items/{}", tenantgate_reference_api::pg::random_hex(16));
    let pwned = json!({"name": "pwned"});
    // The first read (0) and the first write (2) ask the twin; the others share it.
    let first = i < 3;
    match shape(i) {
        Shape::Read => {
            if first_control(i) {
                send(p, Method::GET, &item, &p.a, None, 200).await;
            }
            if first {
                send(p, Method::GET, &twin, &p.b, None, 404).await;
            }
            send(p, Method::GET, &item, &p.b, None, 404).await;
        }
        Shape::List => {
            if first_control(i) {
                send(p, Method::GET, "/items", &p.a, None, 200).await;
            }
            send(p, Method::GET, "/items", &p.b, None, 200).await;
        }
        Shape::Write => {
            send(p, Method::GET, &item, &p.a, None, 200).await;
            if first {
                send(p, Method::PATCH, &twin, &p.b, Some(&pwned), 404).await;
            }
            send(p, Method::PATCH, &item, &p.b, Some(&pwned), 404).await;
            send(p, Method::GET, &item, &p.a, None, 200).await;
        }
    }
}

async fn signup(client: &reqwest::Client, base: &str) -> Result<Org, reqwest::Error> {
    let v: Value = client
        .post(format!("{base}/signup"))
        .json(&json!({"name": "loadgen"}))
        .send()
        .await?
        .json()
        .await?;
    Ok(Org {
        auth: format!("Bearer {}", v["token"].as_str().unwrap_or_default()),
    })
}

async fn prepare(base: &str) -> Result<Plan, reqwest::Error> {
    let client = reqwest::Client::builder().build()?;
    let a = signup(&client, base).await?;
    let b = signup(&client, base).await?;
    let mut items = Vec::new();
    for k in 0..SEEDED {
        let v: Value = client
            .post(format!("{base}/items"))
            .header("authorization", &a.auth)
            .json(&json!({"name": format!("loadgen-{k}")}))
            .send()
            .await?
            .json()
            .await?;
        items.push(v["id"].as_str().unwrap_or_default().to_string());
    }
    Ok(Plan {
        client,
        base: base.to_string(),
        a,
        b,
        items,
        wrong: AtomicU64::new(0),
        sent: AtomicU64::new(0),
    })
}

/// Runs `indices` with `jobs` workers pulling the next check from a shared counter.
async fn run_pool(p: &Arc<Plan>, indices: Arc<Vec<usize>>, jobs: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..jobs.max(1))
        .map(|_| {
            let (p, indices, next) = (p.clone(), indices.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = indices.get(n) else { break };
                    check(&p, i).await;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}

/// Runs `checks` checks at `jobs` concurrency on `rt` (its own runtime, so it does not
/// share threads with the target).
pub fn run(
    rt: &tokio::runtime::Runtime,
    base: &str,
    checks: usize,
    jobs: usize,
    schedule: Schedule,
) -> Result<LoadResult, reqwest::Error> {
    rt.block_on(async {
        let p = Arc::new(prepare(base).await?);
        let started = Instant::now();
        match schedule {
            Schedule::AllConcurrent => {
                run_pool(&p, Arc::new((0..checks).collect()), jobs).await;
            }
            Schedule::WritesSerial => {
                let (writes, others): (Vec<usize>, Vec<usize>) =
                    (0..checks).partition(|i| shape(*i) == Shape::Write);
                run_pool(&p, Arc::new(others), jobs).await;
                run_pool(&p, Arc::new(writes), 1).await;
            }
        }
        Ok(LoadResult {
            wall: started.elapsed(),
            requests: p.sent.load(Ordering::Relaxed),
            wrong: p.wrong.load(Ordering::Relaxed),
        })
    })
}
