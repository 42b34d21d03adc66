// Package ratelimit limits how often each client may call an endpoint: one
// token bucket per key (usually the client's IP address), kept in memory.
//
// A Limiter is safe for concurrent use, tracks a bounded number of keys
// (the least recently seen key makes room for a new one, and buckets that
// have refilled are dropped as new keys arrive) and starts no goroutine.
// Its clock can be replaced, so tests need no sleeping.
//
// It imports no other caddymcp package, and not Caddy. Its API carries no
// stability promise outside this module.
package ratelimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// DefaultMaxKeys is how many keys a Limiter tracks when Config.MaxKeys is
// not set.
const DefaultMaxKeys = 10000

const (
	// shardCount is the number of independently locked parts of a large
	// Limiter.
	shardCount = 16
	// minShardKeys is the smallest share of MaxKeys worth a shard of its
	// own; smaller limiters have a single shard, so MaxKeys is exact.
	minShardKeys = 64
	// idleDropsPerAdd bounds how many refilled buckets are dropped when a
	// new key arrives, so that no request pays for a long clean-up.
	idleDropsPerAdd = 2
	// maxTolerance bounds Burst × (Window / Requests), far above any
	// sensible rate, so that the arithmetic never overflows.
	maxTolerance = 100 * 365 * 24 * time.Hour
)

// Rate is how often one key may proceed: Burst requests at once, refilled
// at Requests per Window (one every Window/Requests).
type Rate struct {
	// Requests is how many requests a key may make per Window, on
	// average. At least 1.
	Requests int
	// Window is the period Requests are counted over. Positive.
	Window time.Duration
	// Burst is how many requests a key that has been idle may make at
	// once. Default (0): Requests.
	Burst int
}

// Validate reports whether r describes a usable rate.
func (r Rate) Validate() error {
	switch {
	case r.Requests < 1:
		return errors.New("requests must be at least 1")
	case r.Window <= 0:
		return errors.New("window must be positive")
	case r.Burst < 0:
		return errors.New("burst must not be negative")
	case r.Window < time.Duration(r.Requests):
		return fmt.Errorf("%d requests per %v is more than one per nanosecond", r.Requests, r.Window)
	}
	if r.interval() > maxTolerance/time.Duration(r.burst()) {
		return fmt.Errorf("a burst of %d at %d per %v takes longer than a century to refill", r.burst(), r.Requests, r.Window)
	}
	return nil
}

func (r Rate) burst() int {
	if r.Burst == 0 {
		return r.Requests
	}
	return r.Burst
}

// interval is the time it takes to refill one request.
func (r Rate) interval() time.Duration { return r.Window / time.Duration(r.Requests) }

// Config configures a Limiter.
type Config struct {
	// Rate is the rate each key is held to.
	Rate Rate
	// MaxKeys bounds the number of keys tracked at once. When it is
	// reached, the key seen least recently (within its shard, for a
	// limiter of more than 1024 keys) is forgotten, and starts again with
	// a full bucket if it comes back. Default: DefaultMaxKeys.
	MaxKeys int
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Limiter is a set of token buckets, one per key.
type Limiter struct {
	interval  int64 // nanoseconds per request
	tolerance int64 // Burst × interval
	now       func() time.Time
	epoch     time.Time
	seed      maphash.Seed
	perShard  int
	shards    []shard
}

// shard is a part of a Limiter's keys under one lock, in a list ordered
// from the most to the least recently seen.
type shard struct {
	mu         sync.Mutex
	keys       map[string]*bucket
	head, tail *bucket
	free       *bucket // a removed bucket, reused for the next new key
}

// bucket is one key's token bucket, kept as its theoretical arrival time
// (GCRA): the bucket is full when tat is not after now, and a request is
// refused when it would push tat more than the burst tolerance ahead.
type bucket struct {
	key        string
	tat        int64 // nanoseconds since the limiter's epoch
	prev, next *bucket
}

// New returns a limiter for cfg.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.Rate.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxKeys < 0 {
		return nil, errors.New("max keys must not be negative")
	}
	maxKeys := cfg.MaxKeys
	if maxKeys == 0 {
		maxKeys = DefaultMaxKeys
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	n := 1
	if maxKeys >= shardCount*minShardKeys {
		n = shardCount
	}
	interval := cfg.Rate.interval()
	l := &Limiter{
		interval:  int64(interval),
		tolerance: int64(interval) * int64(cfg.Rate.burst()),
		now:       now,
		epoch:     now(),
		seed:      maphash.MakeSeed(),
		perShard:  (maxKeys + n - 1) / n,
		shards:    make([]shard, n),
	}
	for i := range l.shards {
		l.shards[i].keys = make(map[string]*bucket)
	}
	return l, nil
}

// Allow takes one request from key's bucket. When the bucket is empty it
// returns false and how long until a request would be allowed; a refused
// request takes nothing from the bucket.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := int64(l.now().Sub(l.epoch))
	s := &l.shards[0]
	if len(l.shards) > 1 {
		s = &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	}
	s.mu.Lock()
	b, seen := s.keys[key]
	if seen {
		s.touch(b)
	} else {
		b = s.add(key, now, l.perShard)
	}
	tat := max(b.tat, now) + l.interval
	if over := tat - now - l.tolerance; over > 0 {
		s.mu.Unlock()
		return false, time.Duration(over)
	}
	b.tat = tat
	s.mu.Unlock()
	return true, 0
}

// Len returns the number of keys tracked.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.keys)
		s.mu.Unlock()
	}
	return n
}

// add starts a full bucket for key, first dropping up to idleDropsPerAdd
// refilled buckets from the stale end and, if the shard is still full,
// its least recently seen key.
func (s *shard) add(key string, now int64, limit int) *bucket {
	for i := 0; i < idleDropsPerAdd && s.tail != nil && s.tail.tat <= now; i++ {
		s.remove(s.tail)
	}
	if len(s.keys) >= limit {
		s.remove(s.tail)
	}
	b := s.free
	if b != nil {
		s.free = nil
	} else {
		b = new(bucket)
	}
	b.key, b.tat = key, now
	s.keys[key] = b
	s.pushFront(b)
	return b
}

// touch marks b as the most recently seen.
func (s *shard) touch(b *bucket) {
	if s.head != b {
		s.unlink(b)
		s.pushFront(b)
	}
}

func (s *shard) pushFront(b *bucket) {
	b.prev, b.next = nil, s.head
	if s.head != nil {
		s.head.prev = b
	}
	s.head = b
	if s.tail == nil {
		s.tail = b
	}
}

func (s *shard) unlink(b *bucket) {
	if b.prev != nil {
		b.prev.next = b.next
	} else {
		s.head = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	} else {
		s.tail = b.prev
	}
	b.prev, b.next = nil, nil
}

func (s *shard) remove(b *bucket) {
	s.unlink(b)
	delete(s.keys, b.key)
	b.key = ""
	s.free = b
}

// KeyFunc returns the key a request is counted under. An empty key
// exempts the request from the limit.
type KeyFunc func(r *http.Request) string

// RequestLimiter holds HTTP requests to a Limiter's rate, per key of a
// KeyFunc. A nil *RequestLimiter allows every request.
type RequestLimiter struct {
	limiter *Limiter
	key     KeyFunc
}

// NewRequestLimiter returns a RequestLimiter counting each request under
// key(r) in l.
func NewRequestLimiter(l *Limiter, key KeyFunc) *RequestLimiter {
	return &RequestLimiter{limiter: l, key: key}
}

// Allow counts r and reports whether it may proceed; when not, retryAfter
// is how long its client should wait.
func (rl *RequestLimiter) Allow(r *http.Request) (ok bool, retryAfter time.Duration) {
	if rl == nil {
		return true, 0
	}
	k := rl.key(r)
	if k == "" {
		return true, 0
	}
	return rl.limiter.Allow(k)
}

// RetryAfter formats a wait as the value of a Retry-After header: whole
// seconds, rounded up, at least 1.
func RetryAfter(d time.Duration) string {
	if d <= time.Second {
		return "1"
	}
	secs := (d + time.Second - 1) / time.Second
	if secs > math.MaxInt32 {
		secs = math.MaxInt32
	}
	return strconv.FormatInt(int64(secs), 10)
}
