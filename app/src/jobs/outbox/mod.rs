//! The outbox's worker: for a portal with due work, take a slot of its budget, claim its due
//! heads, send one batch upsert, settle every item in one transaction (sent, rescheduled with
//! backoff, or dead), and go on while there is work.
//!
//! Fair across portals: the worker goes round the portals with due work (the next hub id after
//! the last one served), up to `OUTBOX_CONCURRENCY` batches in flight and at most one per
//! portal. A portal waiting for its budget, or one whose batch is slow, holds one slot; the
//! others keep going, so one portal's backlog delays another's writes by about one batch.
//! The queue itself is [`crate::store::outbox`]; the order rules are [`crate::domain::outbox`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinSet;

mod leases;

use super::{Job, Next};
use crate::connections::Portals;
use crate::domain::outbox::{self as order, Claimed};
use crate::domain::portal::PortalId;
use crate::hubspot::limiter::Permit;
use crate::hubspot::retry::RateLimitPolicy;
use crate::hubspot::{HubSpotClient, HubSpotError};
use crate::store::outbox::{restore, Item, Outbox, Outcome};
use crate::store::StoreResult;

/// How long an idle worker waits when nothing wakes it (an enqueue does).
const IDLE: Duration = Duration::from_secs(1);

/// How long the items of a portal that is not connected wait before they are looked at again.
pub const HOLD: Duration = Duration::from_secs(60);

/// `items` waiting, pending, for [`HOLD`]: not sent, and no attempt counted (their portal is
/// not connected now).
fn held<'a>(items: impl IntoIterator<Item = &'a Item>, why: &HubSpotError) -> Vec<Outcome<'a>> {
    let reason = why.to_string();
    items
        .into_iter()
        .map(|item| Outcome::Held {
            item,
            reason: reason.clone(),
            wait: HOLD,
        })
        .collect()
}

/// Where a batch's client comes from.
#[derive(Debug, Clone)]
enum Clients {
    /// One account for every item (tests, and the single private-app account).
    One(Arc<HubSpotClient>),
    /// Each portal's own.
    Portals(Box<Portals>),
}

/// An account's queue: `None` is the single private-app account's.
type Queue = Option<PortalId>;

/// One worker: this process's, by its [`crate::identity`].
#[derive(Debug, Clone)]
pub struct Worker {
    outbox: Outbox,
    clients: Clients,
    owner: String,
    /// When (on the store's clock) it last looked for dead workers' leases.
    checked_at: Option<i64>,
    /// Batches in flight at most, each a different queue's.
    concurrency: usize,
    /// The queue served last in the round (`None`: a round starts).
    cursor: Arc<Mutex<Option<Queue>>>,
    /// Turns true at shutdown: no new batch starts, those in flight finish.
    stopping: Option<watch::Receiver<bool>>,
    /// Lifecycle events' deliveries, served by this same worker after the contact writes.
    lifecycle: Option<super::lifecycle::Delivery>,
}

impl Worker {
    /// A worker sending every item with `client`.
    pub fn new(outbox: Outbox, client: Arc<HubSpotClient>, owner: impl Into<String>) -> Self {
        Self::with(outbox, Clients::One(client), owner.into())
    }

    /// A worker sending each portal's items with that portal's client.
    pub fn for_portals(outbox: Outbox, portals: Portals, owner: impl Into<String>) -> Self {
        Self::with(outbox, Clients::Portals(Box::new(portals)), owner.into())
    }

    pub(super) fn owner(&self) -> &str {
        &self.owner
    }

    fn with(outbox: Outbox, clients: Clients, owner: String) -> Self {
        Self {
            outbox,
            clients,
            owner,
            checked_at: None,
            concurrency: 1,
            cursor: Arc::default(),
            stopping: None,
            lifecycle: None,
        }
    }

    /// Also delivers lifecycle events ([`super::lifecycle`]): a round of one batch per portal
    /// with due subjects after each round of contact writes.
    pub fn with_lifecycle(mut self, delivery: super::lifecycle::Delivery) -> Self {
        self.lifecycle = Some(delivery);
        self
    }

    /// One round of lifecycle deliveries ([`super::lifecycle::Delivery::round`]).
    pub async fn lifecycle_round(&self) -> StoreResult<bool> {
        match &self.lifecycle {
            Some(delivery) => delivery.round(self).await,
            None => Ok(false),
        }
    }

    /// Up to `n` batches in flight, each a different portal's (at least 1).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Stops starting batches once `stop` turns true (the in-flight ones finish).
    pub fn with_stop(mut self, stop: watch::Receiver<bool>) -> Self {
        self.stopping = Some(stop);
        self
    }

    pub(super) fn stopping(&self) -> bool {
        self.stopping.as_ref().is_some_and(|s| *s.borrow())
    }

    /// The next queue in the round with due work, passing over `skip` (in flight, or found
    /// with nothing to send this step). `None`: no other queue has due work.
    async fn next_queue(&self, skip: &HashSet<Queue>) -> StoreResult<Option<Queue>> {
        let mut cursor = *self.cursor.lock();
        let mut passed = HashSet::new();
        loop {
            let Some(queue) = self.outbox.next_portal_after(cursor).await? else {
                return Ok(None);
            };
            if !skip.contains(&queue) {
                *self.cursor.lock() = Some(queue);
                return Ok(Some(queue));
            }
            if !passed.insert(queue) {
                return Ok(None); // round the whole ring: every due queue is skipped
            }
            cursor = Some(queue);
        }
    }

    pub(super) async fn client(
        &self,
        portal: Option<PortalId>,
    ) -> Result<Arc<HubSpotClient>, HubSpotError> {
        match &self.clients {
            Clients::One(client) => Ok(client.clone()),
            Clients::Portals(portals) => portals.client_for(portal).await,
        }
    }

    /// When something is due, sends one batch: the next queue's in the round (see
    /// [`batch`](Self::batch)). Returns how many items were settled; 0 when nothing was due.
    pub async fn try_once(&self) -> StoreResult<usize> {
        match self.next_queue(&HashSet::new()).await? {
            Some(portal) => self.batch(portal).await,
            None => Ok(0),
        }
    }

    /// Takes a slot of `portal`'s budget, claims its due heads, sends them as one batch and
    /// records the outcome. Returns how many items were settled (sent, failed or held); 0 when
    /// nothing could go (another worker took them, or the portal's calls are paused).
    pub async fn batch(&self, portal: Queue) -> StoreResult<usize> {
        let client = match self.client(portal).await {
            Ok(client) => client,
            // Not connected (never, or reauthorization required): its items wait, and no
            // attempt is counted against them; a reinstall lets them go.
            Err(e @ HubSpotError::NotConnected(_)) => {
                let items = self.outbox.claim_from(&self.owner, portal).await?;
                self.outbox.settle(&self.owner, &held(&items, &e)).await?;
                return Ok(items.len());
            }
            Err(e) => {
                tracing::warn!(error = %crate::mask::text(&e.to_string()), "outbox worker: no client for the next batch yet");
                return Ok(0);
            }
        };
        // While HubSpot's calls are paused (the circuit breaker), items wait: an attempt that
        // would fail at once must not count against them.
        if client.paused() {
            return Ok(0);
        }
        let permit = client.reserve().await;
        let items = self.outbox.claim_from(&self.owner, portal).await?;
        if items.is_empty() {
            return Ok(0); // another worker took them; the slot goes unused
        }
        self.send_with(&client, &items, Some(permit)).await?;
        Ok(items.len())
    }

    /// Sends claimed `items` (one portal's: one input per email, folded oldest first) and
    /// settles every item by the outcome, in one write transaction.
    pub async fn send(&self, items: &[Item], permit: Option<Permit<'_>>) -> StoreResult<()> {
        let portal = items
            .first()
            .and_then(|i| i.portal_id)
            .map(|p| PortalId(p as u64));
        match self.client(portal).await {
            Ok(client) => self.send_with(&client, items, permit).await,
            Err(e) => self.outbox.settle(&self.owner, &held(items, &e)).await,
        }
    }

    async fn send_with(
        &self,
        client: &HubSpotClient,
        items: &[Item],
        permit: Option<Permit<'_>>,
    ) -> StoreResult<()> {
        let by_id: BTreeMap<i64, &Item> = items.iter().map(|i| (i.id, i)).collect();
        let claimed: Vec<Claimed<'_>> = items
            .iter()
            .map(|i| Claimed {
                id: i.id,
                email: &i.email,
                properties: &i.properties,
            })
            .collect();
        let mut inputs = Vec::new();
        let mut groups: Vec<Vec<&Item>> = Vec::new();
        let mut outcomes = Vec::new();
        for folded in order::fold(&claimed) {
            let group: Vec<&Item> = folded.ids.iter().map(|id| by_id[id]).collect();
            match folded.properties.and_then(|p| restore(&folded.email, &p)) {
                Ok(input) => {
                    inputs.push(input);
                    groups.push(group);
                }
                // Sending a guess would be a wrong write: the group is dead.
                Err(e) => outcomes.extend(group.into_iter().map(|item| Outcome::Failed {
                    item,
                    error: e.clone(),
                    fatal: true,
                    retry_after: None,
                })),
            }
        }
        if !inputs.is_empty() {
            match client.upsert_contacts_with(permit, &inputs).await {
                Ok(results) => {
                    for (result, group) in results.into_iter().zip(groups) {
                        outcomes.extend(group.into_iter().map(|item| match &result {
                            Ok(done) => Outcome::Sent {
                                item,
                                hubspot_id: done.id.clone(),
                            },
                            Err(refused) => Outcome::Failed {
                                item,
                                error: format!("HubSpot refused it: {refused}"),
                                fatal: true,
                                retry_after: None,
                            },
                        }));
                    }
                }
                Err(e @ HubSpotError::NotConnected(_)) => {
                    // The portal lost its connection mid-way (its refresh token refused): the
                    // items wait for the reinstall; no attempt is counted.
                    outcomes.extend(held(groups.into_iter().flatten(), &e));
                }
                Err(e) => {
                    // A 429 that reaches here outlived the client's own retries (a DAILY limit,
                    // or a storm longer than HUBSPOT_TIMEOUT): wait until the window it names
                    // has room.
                    let retry_after = match &e {
                        HubSpotError::Api { status: 429, body } => {
                            Some(RateLimitPolicy::of(body.policy_name.as_deref()).wait())
                        }
                        _ => None,
                    };
                    tracing::warn!(error = %crate::mask::text(&e.to_string()), items = items.len(), "outbox batch failed; will retry");
                    outcomes.extend(groups.into_iter().flatten().map(|item| Outcome::Failed {
                        item,
                        error: e.to_string(),
                        fatal: false,
                        retry_after,
                    }));
                }
            }
        }
        self.outbox.settle(&self.owner, &outcomes).await
    }
}

impl Worker {
    /// Keeps up to `concurrency` batches in flight, going round the queues with due work,
    /// until none is left that could send (or shutdown): a queue whose batch settled nothing
    /// (paused, or taken by another worker) rests until the next step. A new enqueue refills
    /// a free slot at once.
    async fn run_batches(&mut self) -> StoreResult<()> {
        let wake = self.outbox.wake();
        let mut inflight: JoinSet<StoreResult<usize>> = JoinSet::new();
        let mut queue_of: HashMap<tokio::task::Id, Queue> = HashMap::new();
        let mut skip: HashSet<Queue> = HashSet::new();
        let mut result = Ok(());
        loop {
            self.release_dead_leases().await;
            while inflight.len() < self.concurrency && !self.stopping() && result.is_ok() {
                match self.next_queue(&skip).await {
                    Ok(Some(queue)) => {
                        skip.insert(queue);
                        let worker = self.clone();
                        let task = inflight.spawn(async move { worker.batch(queue).await });
                        queue_of.insert(task.id(), queue);
                    }
                    Ok(None) => break,
                    Err(e) => result = Err(e),
                }
            }
            if inflight.is_empty() {
                return result;
            }
            let free = inflight.len() < self.concurrency;
            tokio::select! {
                Some(done) = inflight.join_next_with_id() => {
                    let (id, settled) = match done {
                        Ok((id, settled)) => (id, settled),
                        Err(e) => {
                            tracing::error!(error = %e, "outbox worker: a batch panicked; its items' leases expire");
                            (e.id(), Ok(0))
                        }
                    };
                    let queue = queue_of.remove(&id).expect("every batch is named");
                    match settled {
                        // Settled some: the queue goes back in the round.
                        Ok(n) if n > 0 => {
                            skip.remove(&queue);
                        }
                        Ok(_) => {}
                        Err(e) => result = Err(e),
                    }
                }
                () = wake.notified(), if free => {}
            }
        }
    }
}

impl Job for Worker {
    const NAME: &'static str = "outbox worker";

    /// Sends while there is work, otherwise waits until woken by an enqueue or for [`IDLE`]. A
    /// batch in flight is finished at shutdown: nothing is left claimed by a clean stop.
    async fn step(&mut self) -> Next {
        // Read before the batches: an item that came due while they ran wakes the next step.
        let now = self.outbox.now_ms();
        let result = self.run_batches().await;
        let result = match (result, self.lifecycle_round().await) {
            // Lifecycle work settled: go round again at once (contacts first).
            (Ok(()), Ok(true)) => return Next::After(Duration::ZERO),
            (Ok(()), Ok(false)) => Ok(()),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        match result {
            // Nothing more to send: sleep until the next item comes due, or IDLE at most (a
            // due item can wait behind an older one of its email that another worker holds).
            Ok(()) => match self.outbox.next_due().await {
                Ok(Some(at)) if at > now => Next::Until(at.min(now + IDLE.as_millis() as i64)),
                _ => Next::After(IDLE),
            },
            Err(e) => {
                tracing::error!(error = %e, "outbox worker: database error; retrying in 1 s");
                Next::After(IDLE)
            }
        }
    }

    fn waker(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.outbox.wake())
    }
}
