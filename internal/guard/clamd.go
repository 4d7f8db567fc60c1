package guard

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Clamd is a client of ClamAV's daemon over its socket protocol, written
// against the documented commands (PING, VERSION, INSTREAM), with the
// "z" prefix so replies end in a NUL byte. One connection per command.
type Clamd struct {
	Network string // "unix" or "tcp"
	Address string
	// Timeout bounds each network step (a chunk written, a reply read).
	Timeout time.Duration
	// StreamMaxLength must not exceed clamd's own StreamMaxLength; past
	// it the client stops sending and marks the verdict Truncated.
	StreamMaxLength int64
	// ChunkSize is the INSTREAM chunk length.
	ChunkSize int
}

// ErrClamdReply means clamd answered with something this client does not
// understand or with an ERROR; the file was not scanned by ClamAV.
var ErrClamdReply = errors.New("unexpected clamd reply")

// Defaults: Debian's clamd.conf ships StreamMaxLength 25M.
const (
	defaultClamdTimeout   = time.Minute
	defaultClamdStreamMax = 25 << 20
	defaultClamdChunk     = 64 << 10
	maxClamdReply         = 4 << 10
)

// NewClamd parses an address: "unix:/run/clamav/clamd.ctl" or an absolute
// path for a unix socket, "tcp:host:3310" or "host:3310" for TCP.
func NewClamd(addr string) (*Clamd, error) {
	c := &Clamd{Timeout: defaultClamdTimeout, StreamMaxLength: defaultClamdStreamMax, ChunkSize: defaultClamdChunk}
	switch {
	case strings.HasPrefix(addr, "unix:"):
		c.Network, c.Address = "unix", strings.TrimPrefix(addr, "unix:")
	case strings.HasPrefix(addr, "tcp:"):
		c.Network, c.Address = "tcp", strings.TrimPrefix(addr, "tcp:")
	case strings.HasPrefix(addr, "/"):
		c.Network, c.Address = "unix", addr
	default:
		c.Network, c.Address = "tcp", addr
	}
	if c.Address == "" {
		return nil, fmt.Errorf("clamd address %q: empty", addr)
	}
	if c.Network == "tcp" {
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			return nil, fmt.Errorf("clamd address %q: %w", addr, err)
		}
	}
	return c, nil
}

func (c *Clamd) String() string { return c.Network + ":" + c.Address }

// Ping checks that clamd answers PONG.
func (c *Clamd) Ping(ctx context.Context) error {
	reply, err := c.command(ctx, "PING")
	if err != nil {
		return err
	}
	if reply != "PONG" {
		return fmt.Errorf("clamd ping: %w: %q", ErrClamdReply, reply)
	}
	return nil
}

// Version returns clamd's version line, e.g. "ClamAV 1.4.6/27000/...".
func (c *Clamd) Version(ctx context.Context) (string, error) {
	return c.command(ctx, "VERSION")
}

func (c *Clamd) command(ctx context.Context, cmd string) (string, error) {
	conn, stop, err := c.dial(ctx)
	if err != nil {
		return "", err
	}
	defer stop()
	if _, err := conn.Write([]byte("z" + cmd + "\x00")); err != nil {
		return "", fmt.Errorf("clamd %s: %w", strings.ToLower(cmd), err)
	}
	return c.reply(conn)
}

// dial connects and arranges for ctx to interrupt any blocked step.
func (c *Clamd) dial(ctx context.Context) (net.Conn, func(), error) {
	d := net.Dialer{Timeout: c.timeout()}
	conn, err := d.DialContext(ctx, c.Network, c.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to clamd: %w", err)
	}
	_ = conn.SetDeadline(time.Now().Add(c.timeout()))
	cancel := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return conn, func() { cancel(); conn.Close() }, nil
}

func (c *Clamd) timeout() time.Duration {
	if c.Timeout <= 0 {
		return defaultClamdTimeout
	}
	return c.Timeout
}

// reply reads one NUL-terminated reply of bounded length.
func (c *Clamd) reply(conn net.Conn) (string, error) {
	_ = conn.SetReadDeadline(time.Now().Add(c.timeout()))
	r := bufio.NewReader(io.LimitReader(conn, maxClamdReply))
	line, err := r.ReadString(0)
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("read clamd reply: %w", err)
	}
	return strings.TrimSpace(strings.TrimRight(line, "\x00")), nil
}

// ClamVerdict is clamd's answer for one stream.
type ClamVerdict struct {
	Infected  bool
	Signature string // the signature name clamd reported FOUND
	Scanned   int64  // bytes sent to clamd
	Truncated bool   // the stream was longer than StreamMaxLength
}

// Scan streams r to clamd with INSTREAM and returns its verdict.
func (c *Clamd) Scan(ctx context.Context, r io.Reader) (ClamVerdict, error) {
	s, err := c.Stream(ctx)
	if err != nil {
		return ClamVerdict{}, err
	}
	if _, err := io.Copy(s, r); err != nil {
		s.abort()
		return ClamVerdict{}, fmt.Errorf("stream to clamd: %w", err)
	}
	return s.Close()
}

// ClamStream is an INSTREAM session: Write the content, then Close for
// the verdict. Writes past StreamMaxLength are counted but not sent.
type ClamStream struct {
	c       *Clamd
	conn    net.Conn
	stop    func()
	w       *bufio.Writer
	sent    int64
	dropped bool
	err     error
}

// Stream opens an INSTREAM session.
func (c *Clamd) Stream(ctx context.Context) (*ClamStream, error) {
	conn, stop, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	s := &ClamStream{c: c, conn: conn, stop: stop, w: bufio.NewWriterSize(conn, c.chunk()+4)}
	if _, err := conn.Write([]byte("zINSTREAM\x00")); err != nil {
		stop()
		return nil, fmt.Errorf("clamd instream: %w", err)
	}
	return s, nil
}

func (c *Clamd) chunk() int {
	if c.ChunkSize <= 0 {
		return defaultClamdChunk
	}
	return c.ChunkSize
}

func (c *Clamd) streamMax() int64 {
	if c.StreamMaxLength <= 0 {
		return defaultClamdStreamMax
	}
	return c.StreamMaxLength
}

// Write sends p in chunks. It never fails the caller's other writers: an
// error is kept and returned by Close.
func (s *ClamStream) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && s.err == nil {
		room := s.c.streamMax() - s.sent
		if room <= 0 {
			s.dropped = true
			break
		}
		chunk := p[:min(len(p), s.c.chunk(), int(min(room, int64(len(p)))))]
		s.err = s.sendChunk(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

func (s *ClamStream) sendChunk(b []byte) error {
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(len(b)))
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.c.timeout()))
	s.w.Write(size[:])
	s.w.Write(b)
	s.sent += int64(len(b))
	return s.w.Flush()
}

// Close ends the stream and reads clamd's verdict.
func (s *ClamStream) Close() (ClamVerdict, error) {
	defer s.stop()
	v := ClamVerdict{Scanned: s.sent, Truncated: s.dropped}
	if s.err == nil {
		s.err = s.sendChunk(nil)
	}
	reply, err := s.c.reply(s.conn)
	if err != nil {
		return v, errors.Join(s.err, err)
	}
	return parseClamReply(v, reply)
}

func (s *ClamStream) abort() { s.stop() }

// parseClamReply reads "stream: OK" or "stream: NAME FOUND".
func parseClamReply(v ClamVerdict, reply string) (ClamVerdict, error) {
	body, ok := strings.CutPrefix(reply, "stream: ")
	switch {
	case ok && body == "OK":
		return v, nil
	case ok && strings.HasSuffix(body, " FOUND"):
		v.Infected, v.Signature = true, strings.TrimSuffix(body, " FOUND")
		return v, nil
	}
	return v, fmt.Errorf("clamd instream: %w: %q", ErrClamdReply, reply)
}
