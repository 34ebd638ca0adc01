package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// ClientOptions connect a Client.
type ClientOptions struct {
	// Node, when set, is the embedded node: the client connects to it in
	// process, as this host's NKEY user (its permissions apply).
	Node *Node
	// Guard checks every decision received; nil refuses all.
	Guard *Guard
	// Apply enforces accepted decisions (the daemon: the ban store
	// path). It returns once they are applied; the messages are
	// acknowledged after.
	Apply func(ctx context.Context, ds []Decision)
	// Local lists this host's decisions to (re)publish: its shared bans
	// in force. Called once the stream is ready and every ResyncEvery.
	Local func(ctx context.Context) ([]Decision, error)
	// Refused reports a decision refused by Guard or by its parser.
	Refused func(d Decision, err error)
	Log     *slog.Logger
	Now     func() time.Time
	// ResyncEvery spaces the republication of Local (0: 10 minutes).
	ResyncEvery time.Duration
	Metrics     *Metrics
	// OutboxDir holds the outbox journal (the daemon's state dir/fleet):
	// decisions not yet stored by the stream survive a restart there.
	// Empty: in memory only.
	OutboxDir string
	// OutboxMax bounds the outbox (0: DefaultOutboxMax).
	OutboxMax int
}

// Client is a host's connection to the fleet: it signs the host's
// decisions with its fleet key and publishes them through a durable
// outbox that keeps the latest per subject until the stream has
// acknowledged it (so a partition or a restart delays publishing, and
// loses nothing), and consumes the others' through a durable consumer,
// verifying each.
type Client struct {
	cfg Config
	o   ClientOptions
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
	key nkeys.KeyPair
	sig signer // key, ready to sign

	ob    *outbox
	mu    sync.Mutex
	acked map[string]Decision // subject → the decision the stream stored last
	kick  chan struct{}
	// resyncNow asks for Local again (after a reconnect).
	resyncNow chan struct{}
	ready     atomic.Bool

	tally Tally
}

// Dial connects to c's NATS (the embedded node in process, or c.NATS.URL)
// with c.Credentials. It retries in the background: a NATS not up yet is
// not an error.
func Dial(c Config, o ClientOptions) (*Client, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ResyncEvery <= 0 {
		o.ResyncEvery = 10 * time.Minute
	}
	cl := &Client{cfg: c, o: o, log: o.Log, acked: map[string]Decision{}, kick: make(chan struct{}, 1), resyncNow: make(chan struct{}, 1)}
	auth, err := credentialsOption(c.Credentials)
	if err != nil {
		return nil, err
	}
	if cl.key, err = signingKey(c); err != nil {
		return nil, err
	}
	if cl.sig, err = newSigner(cl.key); err != nil {
		return nil, fmt.Errorf("fleet: credentials %s: %w", c.Credentials, err)
	}
	// A journal that cannot be opened is said, loudly, and the outbox
	// works in memory: banning must not depend on the state dir.
	cl.ob, err = openOutbox(o.OutboxDir, c.Name, c.Origin(), o.OutboxMax, o.Metrics)
	if err != nil {
		cl.log.Error("fleet: outbox", "err", err)
	}
	if n := cl.ob.len(); n > 0 {
		cl.log.Info("fleet: decisions from the last run still to publish", "count", n)
	}
	opts := []nats.Option{auth, nats.Name("moat " + c.Origin()), nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond), nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(8 << 20), nats.PingInterval(5 * time.Second), nats.MaxPingsOutstanding(3),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			cl.log.Warn("fleet: NATS error", "err", err)
		}),
		nats.ReconnectHandler(func(*nats.Conn) { cl.requestResync() }),
	}
	url := c.NATS.URL
	if o.Node != nil {
		opts = append(opts, nats.InProcessServer(o.Node.Server))
		url = ""
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("fleet: connect to NATS: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("fleet: %w", err)
	}
	cl.nc, cl.js = nc, js
	return cl, nil
}

// credentialsOption reads a .creds file (JWT and seed) or an NKEY seed
// file, both root-only.
func credentialsOption(path string) (nats.Option, error) {
	if err := RootOnly(path); err != nil {
		return nil, fmt.Errorf("fleet: credentials: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fleet: credentials: %w", err)
	}
	if strings.Contains(string(b), "BEGIN NATS USER JWT") {
		return nats.UserCredentials(path), nil
	}
	opt, err := nats.NkeyOptionFromSeed(path)
	if err != nil {
		return nil, fmt.Errorf("fleet: credentials %s: %w (expected an NKEY seed from moat fleet keygen, or a .creds file)", path, err)
	}
	return opt, nil
}

// signingKey is the host's fleet key (the NKEY seed of its credentials),
// which must be the one fleet.hosts lists for it: the others verify its
// decisions against that.
func signingKey(c Config) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(c.Credentials)
	if err != nil {
		return nil, fmt.Errorf("fleet: credentials: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return nil, fmt.Errorf("fleet: credentials %s: no NKEY seed to sign decisions with: %w", c.Credentials, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("fleet: credentials %s: %w", c.Credentials, err)
	}
	if want := c.Hosts[c.Origin()]; want != pub {
		return nil, fmt.Errorf("fleet: credentials %s hold key %s but fleet.hosts.%s is %q: every host would refuse this host's decisions (put the key moat fleet keygen printed in fleet.hosts on every host)", c.Credentials, pub, c.Origin(), want)
	}
	return kp, nil
}

// Close ends the connection and syncs the outbox: decisions still in it
// are published by the next run.
func (cl *Client) Close() {
	cl.nc.Close()
	cl.ob.close()
}

// OutboxErr is why the outbox is in memory only (nil: it is durable).
func (cl *Client) OutboxErr() error { return cl.ob.Err() }

// Conn is the NATS connection (tests, blocklists).
func (cl *Client) Conn() *nats.Conn { return cl.nc }

// JetStream is the JetStream context (blocklists).
func (cl *Client) JetStream() jetstream.JetStream { return cl.js }

// StreamConfig is the decisions stream's configuration.
func StreamConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "moat's ban decisions of fleet " + c.Name,
		Subjects:    []string{SubjectPrefix(c.Name) + ">"},
		Retention:   jetstream.LimitsPolicy,
		// The latest decision per origin and prefix wins: a tombstone
		// replaces its ban, an extension the shorter ban.
		MaxMsgsPerSubject: 1,
		MaxMsgs:           5_000_000,
		MaxMsgSize:        MaxDecisionSize,
		Discard:           jetstream.DiscardOld,
		Storage:           jetstream.FileStorage,
		Replicas:          c.Replicas(),
		Duplicates:        2 * time.Minute,
		AllowMsgTTL:       true,
	}
}

// Publish queues d; the outbox keeps the latest per subject (by
// Decision.Before, not by call order: a resync from an older snapshot
// never replaces a tombstone) until the stream acknowledges it.
func (cl *Client) Publish(ds ...Decision) {
	for _, d := range ds {
		d = d.normal(cl.cfg.Origin())
		s := d.Subject(cl.cfg.Name)
		cl.mu.Lock()
		a, ok := cl.acked[s]
		cl.mu.Unlock()
		if ok && (a.ID() == d.ID() || d.Before(a)) {
			continue
		}
		cl.ob.put(s, d)
	}
	select {
	case cl.kick <- struct{}{}:
	default:
	}
}

// Pending is the number of decisions waiting for the stream.
func (cl *Client) Pending() int { return cl.ob.len() }

// Ready reports whether the stream and the consumer were set up.
func (cl *Client) Ready() bool { return cl.ready.Load() }

// Resync republishes Local soon (after ban events were dropped).
func (cl *Client) Resync() { cl.requestResync() }

func (cl *Client) requestResync() {
	select {
	case cl.resyncNow <- struct{}{}:
	default:
	}
}

// Run sets up the stream and this host's consumer (retrying while the
// cluster forms or lacks quorum), then publishes and consumes until ctx
// ends.
func (cl *Client) Run(ctx context.Context) error {
	var cons jetstream.Consumer
	for backoff := 100 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		var err error
		if cons, err = cl.setup(ctx); err == nil {
			break
		}
		cl.log.Debug("fleet: stream not ready", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
	cl.ready.Store(true)
	cl.log.Info("fleet: connected", "fleet", cl.cfg.Name, "origin", cl.cfg.Origin(), "replicas", cl.cfg.Replicas())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); cl.publishLoop(ctx) }()
	go func() { defer wg.Done(); cl.consumeLoop(ctx, cons) }()
	wg.Wait()
	return nil
}

func (cl *Client) setup(ctx context.Context) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cl.js.CreateStream(ctx, StreamConfig(cl.cfg)); err != nil {
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("create stream %s: %w", StreamName, err)
		}
		// Made by a member with another config (replicas): use it.
		if _, err := cl.js.Stream(ctx, StreamName); err != nil {
			return nil, err
		}
	}
	return cl.js.CreateOrUpdateConsumer(ctx, StreamName, jetstream.ConsumerConfig{
		Durable:       ConsumerName(cl.cfg.Origin()),
		Description:   "moat host " + cl.cfg.Origin(),
		FilterSubject: SubjectPrefix(cl.cfg.Name) + ">",
		// A new host starts from the current state: the latest decision
		// per origin and prefix.
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
		// Each decision acknowledged once applied (consumeLoop).
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 65536,
		Replicas:      0,
	})
}

// publishLoop sends the outbox whenever something is queued, retrying
// what the stream did not acknowledge with backoff, and republishes the
// host's bans (Local) at start and every ResyncEvery.
func (cl *Client) publishLoop(ctx context.Context) {
	cl.resync(ctx)
	// What the journal kept from the last run goes first.
	select {
	case cl.kick <- struct{}{}:
	default:
	}
	resync := time.NewTicker(cl.o.ResyncEvery)
	defer resync.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	fsync := time.NewTicker(time.Second)
	defer fsync.Stop()
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-fsync.C:
			cl.ob.sync()
			continue
		case <-cl.kick:
		case <-retry.C:
		case <-resync.C:
			cl.resync(ctx)
		case <-cl.resyncNow:
			cl.resync(ctx)
		}
		if cl.flush(ctx) {
			backoff = 100 * time.Millisecond
			continue
		}
		retry.Reset(backoff)
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (cl *Client) resync(ctx context.Context) {
	if cl.o.Local == nil {
		return
	}
	ds, err := cl.o.Local(ctx)
	if err != nil {
		cl.log.Warn("fleet: list local bans to publish", "err", err)
		return
	}
	// Forget what was acknowledged for bans no longer in force: the
	// record stays bounded by the bans this host holds.
	keep := make(map[string]bool, len(ds))
	for _, d := range ds {
		keep[d.normal(cl.cfg.Origin()).Subject(cl.cfg.Name)] = true
	}
	cl.mu.Lock()
	for s := range cl.acked {
		if !keep[s] {
			delete(cl.acked, s)
		}
	}
	cl.mu.Unlock()
	cl.Publish(ds...)
}

// flush publishes everything in the outbox and waits for the acks; it
// reports whether the outbox is empty after.
func (cl *Client) flush(ctx context.Context) bool {
	for {
		batch := cl.ob.snapshot(4096)
		if len(batch) == 0 {
			return true
		}
		type sent struct {
			subj string
			d    Decision
			f    jetstream.PubAckFuture
		}
		var futures []sent
		now := cl.o.Now()
		var failed error
		for s, d := range batch {
			opts := []jetstream.PublishOpt{jetstream.WithMsgID(d.ID()), jetstream.WithRetryAttempts(0)}
			if !d.Expires.IsZero() {
				left := d.Expires.Sub(now)
				if left <= 0 { // ended: nothing to tell
					cl.done(s, d)
					continue
				}
				opts = append(opts, jetstream.WithMsgTTL(left.Truncate(time.Second)+time.Second))
			}
			signed := d
			signed.sign(cl.cfg.Name, cl.sig)
			data, err := signed.Marshal()
			if err != nil {
				cl.done(s, d)
				continue
			}
			f, err := cl.js.PublishMsgAsync(&nats.Msg{Subject: s, Data: data}, opts...)
			if err != nil {
				failed = err
				break
			}
			futures = append(futures, sent{s, d, f})
		}
		timeout := time.After(10 * time.Second)
		ok := 0
		for _, f := range futures {
			select {
			case <-f.f.Ok():
				cl.done(f.subj, f.d)
				ok++
			case err := <-f.f.Err():
				failed = err
			case <-timeout:
				failed = errors.New("no acknowledgement in 10s")
			case <-ctx.Done():
				return false
			}
		}
		cl.o.Metrics.published(ok)
		cl.tally.Add(cl.cfg.Origin(), now, ok)
		if failed != nil {
			cl.log.Debug("fleet: publish failed; kept for retry", "pending", cl.Pending(), "err", failed)
			cl.o.Metrics.publishFailed()
			return false
		}
	}
}

// done removes d from the outbox unless a newer decision replaced it.
func (cl *Client) done(subj string, d Decision) {
	cl.ob.done(subj, d.ID())
	cl.mu.Lock()
	if a, ok := cl.acked[subj]; !ok || !d.Before(a) {
		cl.acked[subj] = d
	}
	cl.mu.Unlock()
}

type received struct {
	msg   jetstream.Msg
	d     Decision
	check bool  // parsed, another host's: to verify and check
	err   error // the signature's verdict (verifySigs)
	ok    bool  // passed every check
}

// consumeLoop hands the stream's decisions to Apply in batches, in the
// stream's order, and acknowledges each message of a batch once the batch
// is applied: a decision not acknowledged (moat stopped first, or handed
// to a pull request of a client that died) is redelivered, and an older
// decision redelivered after a newer one is refused as stale.
func (cl *Client) consumeLoop(ctx context.Context, cons jetstream.Consumer) {
	in := make(chan received, 8192)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		d, err := ParseDecision(cl.cfg.Name, m.Subject(), m.Data())
		check := false
		switch {
		case err != nil:
			cl.refuse(d, err)
		case d.Origin == cl.cfg.Origin():
		case cl.o.Guard == nil:
			cl.refuse(d, errors.New("no guard"))
		default:
			check = true
		}
		select {
		case in <- received{msg: m, d: d, check: check}:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(16384), jetstream.PullHeartbeat(2*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			cl.log.Debug("fleet: consume", "err", err)
		}))
	if err != nil {
		cl.log.Error("fleet: consume decisions", "err", err)
		return
	}
	defer cc.Stop()
	batch := make([]received, 0, 8192)
	ds := make([]Decision, 0, 8192)
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-in:
			batch = append(batch[:0], r)
		}
	gather:
		for len(batch) < cap(batch) {
			select {
			case r := <-in:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		ds = ds[:0]
		now := cl.o.Now()
		counts := map[string]int{}
		cl.verifySigs(batch)
		for i := range batch {
			r := &batch[i]
			if !r.check {
				continue
			}
			if r.err == nil {
				r.err = cl.o.Guard.VerifyFresh(r.d, now)
			}
			if r.err == nil {
				r.err = cl.o.Guard.Check(r.d)
			}
			if r.err != nil {
				cl.refuse(r.d, r.err)
			} else {
				r.ok = true
			}
		}
		for _, r := range batch {
			if r.ok {
				ds = append(ds, r.d)
				counts[r.d.Origin]++
			}
		}
		if len(ds) > 0 && cl.o.Apply != nil {
			cl.o.Apply(ctx, ds)
		}
		if ctx.Err() != nil {
			return // not acknowledged: redelivered to the next run
		}
		// Each message on its own: with AckAll, the ack of a later
		// message also acknowledged one the consumer had handed to a
		// pull request of a client since gone (moat killed), which was
		// then never redelivered.
		for _, r := range batch {
			r.msg.Ack()
		}
		for o, n := range counts {
			cl.tally.Add(o, now, n)
		}
		cl.o.Metrics.received(len(ds))
	}
}

// verifySigs checks the batch's signatures on every core: the
// signatures are independent; what depends on order (expiry, replays)
// is checked after, one by one, in the stream's order.
func (cl *Client) verifySigs(batch []received) {
	workers := min(runtime.GOMAXPROCS(0), 1+len(batch)/64)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(batch); i += workers {
				if batch[i].check {
					batch[i].err = cl.o.Guard.VerifySig(batch[i].d)
				}
			}
		}()
	}
	wg.Wait()
}

func (cl *Client) refuse(d Decision, err error) {
	cl.o.Metrics.refused()
	cl.o.Metrics.unverified(verifyReason(err))
	if cl.o.Refused != nil {
		cl.o.Refused(d, err)
	}
}
