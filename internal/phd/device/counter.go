package device

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ErrCounterDamaged means the sequence state file cannot be read. Never
// start again from 1: the gateway would refuse every message as a replay.
// Re-enrol the device (new identity, new counter) instead.
var ErrCounterDamaged = errors.New("sequence counter state is damaged")

// DefaultReserve is how many sequence numbers a Counter reserves per
// fsync. A restart skips the unused rest of a block, which the replay
// window tolerates; a lower number costs an fsync per message.
const DefaultReserve = 16

const counterMagic = "medsec-phd-seq 1"

// Counter hands out a device's message sequence numbers, 1, 2, 3, …, and
// never the same one twice, across restarts and crashes: before a number
// is used, a state file saying it may have been used is on disk (written
// atomically and fsync'd). It is safe for concurrent use.
type Counter struct {
	mu       sync.Mutex
	path     string
	reserve  uint64
	next     uint64 // next number to hand out
	reserved uint64 // numbers up to here are covered by the state file
}

// OpenCounter opens or creates the state file at path. reserve is the
// block size (DefaultReserve if ≤ 0; 1 for an fsync per message).
func OpenCounter(path string, reserve int) (*Counter, error) {
	if reserve <= 0 {
		reserve = DefaultReserve
	}
	c := &Counter{path: path, reserve: uint64(reserve)}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.next = 1
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("open sequence counter: %w", err)
	}
	reserved, err := parseCounter(data)
	if err != nil {
		return nil, fmt.Errorf("open sequence counter %s: %w", path, err)
	}
	c.next, c.reserved = reserved+1, reserved
	return c, nil
}

func parseCounter(data []byte) (uint64, error) {
	magic, rest, ok := strings.Cut(string(data), "\n")
	if !ok || magic != counterMagic {
		return 0, ErrCounterDamaged
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(rest, "\n"), 10, 64)
	if err != nil || n == 0 {
		return 0, ErrCounterDamaged
	}
	return n, nil
}

// Next returns the next sequence number, reserving a new block on disk
// first when the current one is used up.
func (c *Counter) Next() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next > c.reserved {
		upTo := c.next + c.reserve - 1
		data := fmt.Sprintf("%s\n%d\n", counterMagic, upTo)
		if err := writeFileAtomic(c.path, []byte(data), 0o600); err != nil {
			return 0, fmt.Errorf("reserve sequence numbers: %w", err)
		}
		c.reserved = upTo
	}
	n := c.next
	c.next++
	return n, nil
}
