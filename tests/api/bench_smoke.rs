//! The load generator itself: seeded against a test server, a few workloads run without errors.
//! (Figures come from bench/run.sh; nothing here measures time.)

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

use callsd::config::{ServeSettings, TenantLimitSettings};

use crate::helpers::{connection_string, spawn_app, spawn_app_with, test_settings};

/// Runs callsd-bench without blocking the runtime: the test server shares it.
async fn run_bench(args: &[&str], database_url: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_callsd-bench"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .kill_on_drop(true)
        .output()
        .await
        .expect("callsd-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "callsd-bench {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn bench_seeds_a_tenant_and_runs_workloads_without_errors() {
    let app = spawn_app().await;
    let database_url = connection_string(&app.database);
    let seeded = run_bench(
        &[
            "seed", "--tenant", "bench", "--calls", "300", "--batch", "100",
        ],
        &database_url,
    )
    .await;
    let key = seeded
        .lines()
        .find_map(|line| line.strip_prefix("key="))
        .expect("seed prints the key");

    let address = format!("http://{}", app.address);
    let report = run_workloads(
        &address,
        key,
        "ping,get,list,search,create,update,mixed,list-deep,summarize,get-rest,list-rest",
        &database_url,
    )
    .await;
    assert_every_result_without_errors(&report, 11);

    // One export of the whole tenant: every call (300 seeded, the creates since), and the token.
    let exported = run_bench(
        &["export", "--address", &address, "--key", key],
        &database_url,
    )
    .await;
    let result = exported
        .lines()
        .find(|line| line.starts_with("RESULT workload=export "))
        .unwrap_or_else(|| panic!("a RESULT line: {exported}"));
    assert!(result.contains(" sync_token=true "), "{result}");
    let calls: u64 = result
        .split_whitespace()
        .find_map(|field| field.strip_prefix("calls="))
        .and_then(|calls| calls.parse().ok())
        .expect("calls=N");
    assert!(calls >= 300, "{result}");

    // The floor server answers the same get and list workloads.
    let tenant_id = seeded
        .lines()
        .find_map(|line| line.strip_prefix("tenant_id="))
        .expect("seed prints the tenant id");
    let mut floor = Command::new(env!("CARGO_BIN_EXE_callsd-bench"))
        .args(["floor", "--tenant-id", tenant_id])
        .env("DATABASE_URL", &database_url)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("callsd-bench floor starts");
    let mut first_line = String::new();
    BufReader::new(floor.stdout.take().expect("piped stdout"))
        .read_line(&mut first_line)
        .await
        .expect("the floor prints its address");
    let floor_address = first_line
        .trim()
        .strip_prefix("listening=")
        .map(|address| format!("http://{address}"))
        .expect("listening=ADDRESS");
    let report = run_workloads(&floor_address, key, "get,list", &database_url).await;
    assert_every_result_without_errors(&report, 2);
    floor.kill().await.expect("the floor stops");
}

#[tokio::test]
async fn bench_fairness_reports_the_quiet_tenant_and_the_noisy_tenants_refusals() {
    // A bucket of 500 that barely refills: the quiet tenant's dozen requests fit in it, the
    // noisy tenant's 600 (2,000/s for 300 ms, sent whatever the answers) cannot, whatever the
    // speed of the machine (on a slow one its in-flight share refuses them first).
    let settings = ServeSettings {
        tenant_limits: TenantLimitSettings {
            tenant_rate: 0.001,
            tenant_burst: 500,
            ..test_settings().tenant_limits
        },
        ..test_settings()
    };
    let app = spawn_app_with(settings, chrono_tz::Tz::UTC).await;
    let database_url = connection_string(&app.database);
    let key_of = |output: String| {
        output
            .lines()
            .find_map(|line| line.strip_prefix("key="))
            .expect("prints the key")
            .to_owned()
    };
    let quiet = key_of(
        run_bench(
            &[
                "seed", "--tenant", "quiet", "--calls", "300", "--batch", "300",
            ],
            &database_url,
        )
        .await,
    );
    let noisy = key_of(run_bench(&["tenant", "--name", "noisy"], &database_url).await);

    let address = format!("http://{}", app.address);
    let report = run_bench(
        &[
            "fairness",
            "--address",
            &address,
            "--quiet-key",
            &quiet,
            "--noisy-key",
            &noisy,
            "--seeded",
            "300",
            "--quiet-rate",
            "20",
            "--noisy-rate",
            "2000",
            "--warmup",
            "0s",
            "--duration",
            "300ms",
        ],
        &database_url,
    )
    .await;
    let result = report
        .lines()
        .find(|line| line.starts_with("RESULT workload=fairness "))
        .unwrap_or_else(|| panic!("a RESULT line: {report}"));
    for expected in [
        " alone_errors=none ",
        " loaded_errors=none ",
        " noisy_reasons=TENANT_",
    ] {
        assert!(result.contains(expected), "{expected:?} in {result}");
    }
    assert!(!result.contains(" alone_ok=0 "), "{result}");
    assert!(!result.contains(" loaded_ok=0 "), "{result}");
}

/// A few hundred requests of each workload against `address`.
async fn run_workloads(address: &str, key: &str, workloads: &str, database_url: &str) -> String {
    let args = [
        "run",
        "--address",
        address,
        "--key",
        key,
        "--workloads",
        workloads,
        "--seeded",
        "300",
        "--deep-page",
        "3",
        "--connections",
        "2",
        "--concurrency",
        "4",
        "--warmup",
        "0s",
        "--duration",
        "300ms",
    ];
    run_bench(&args, database_url).await
}

fn assert_every_result_without_errors(report: &str, workloads: usize) {
    let results: Vec<&str> = report
        .lines()
        .filter(|line| line.starts_with("RESULT "))
        .collect();
    assert_eq!(
        results.len(),
        workloads,
        "one result per workload: {report}"
    );
    for result in results {
        assert!(result.contains(" errors=0 "), "{result}");
        assert!(!result.contains(" ok=0 "), "{result}");
    }
}
