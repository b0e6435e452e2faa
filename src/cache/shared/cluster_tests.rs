//! The tier on a real three-primary Redis Cluster (started per test, each node stopped
//! by its pid): users' entries land on several nodes, another process serves them and
//! waits on a lease there, and evictions and `clear` reach every node and process.

use super::test_redis::RedisCluster;
use super::tests::{config, fill, served, tier, waiter_is_woken_by_the_fill};
use super::*;
use crate::ground::identity::IdentityTuple;

/// Twelve users: with three primaries, their hash tags spread over more than one node.
fn user_key(i: usize) -> String {
    format!("tenant\u{1f}https://idp\u{1f}user-{i}\u{1f}api://mcp/.default\u{1f}0123abcd")
}

fn cluster_config(cluster: &RedisCluster) -> SharedCacheConfig {
    SharedCacheConfig {
        cluster: true,
        nodes: cluster.url().split(',').map(str::to_owned).collect(),
        ..config("redis://unused", &[(1, 0xaa)])
    }
}

/// How many keys each node holds.
fn key_counts(cluster: &RedisCluster) -> Vec<usize> {
    cluster
        .nodes
        .iter()
        .map(|node| {
            let out = std::process::Command::new("redis-cli")
                .args(["-p", &node.port.to_string(), "dbsize"])
                .output()
                .expect("redis-cli runs");
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn a_cluster_shares_entries_across_nodes_and_processes_and_clear_empties_every_node() {
    let cluster = RedisCluster::start();
    let (a, _) = tier(&cluster_config(&cluster));
    let (b, heard) = tier(&cluster_config(&cluster));
    for i in 0..12 {
        fill(&a, &user_key(i), &format!("at-{i}")).await;
    }
    for i in 0..12 {
        assert_eq!(served(&b, &user_key(i)).await, Some(format!("at-{i}")));
    }
    let holding = key_counts(&cluster).iter().filter(|n| **n > 0).count();
    assert!(holding >= 2, "entries on {holding} node(s)");
    assert_eq!(
        (b.stats().hits, a.stats().errors, b.stats().errors),
        (12, 0, 0)
    );

    tokio::time::sleep(Duration::from_millis(100)).await;
    let user_3 = IdentityTuple {
        tenant_id: "tenant",
        openid_issuer: "https://idp",
        subject: "user-3",
    };
    a.invalidate(&Invalidation::new(&user_3, None)).await;
    assert_eq!(served(&b, &user_key(3)).await, None, "dropped on its node");
    a.clear().await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while heard.lock().unwrap().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        *heard.lock().unwrap(),
        vec![
            Eviction::Prefix("tenant\u{1f}https://idp\u{1f}user-3\u{1f}".into()),
            Eviction::All
        ],
        "the other process heard both, through the cluster's pub/sub"
    );
    assert_eq!(key_counts(&cluster), [0, 0, 0], "every node emptied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_redis),
    ignore = "needs redis-server on the PATH (apt-get install redis-server) or REDIS_SERVER; build.rs found none"
)]
async fn on_a_cluster_a_waiter_is_woken_by_the_leaders_fill() {
    let cluster = RedisCluster::start();
    let (a, _) = tier(&cluster_config(&cluster));
    let (b, _) = tier(&cluster_config(&cluster));
    waiter_is_woken_by_the_fill(&a, &b).await;
}
