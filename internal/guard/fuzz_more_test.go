package guard

import (
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"testing"
)

// FuzzParseDenyList: a deny list file either is refused or holds exactly
// the digests its lines name, each with the comment that followed it (the
// last one when a digest is listed twice).
func FuzzParseDenyList(f *testing.F) {
	bad := sha256Hex([]byte("benign marker standing in for a known bad file"))
	for _, s := range []string{
		"# known bad\n\n" + bad + "  # test marker\n",
		strings.ToUpper(strings.Repeat("ab", 32)) + "\n",
		bad + "\r\n" + bad + " # again\r\n",
		"abcd\n",
		"# c\n" + strings.Repeat("zz", 32) + "\n",
		"\t" + bad + "#no space\n   \n#" + bad,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d, err := ParseDenyList(strings.NewReader(in))
		if err != nil {
			return
		}
		want := denyModel(t, in)
		if d.Len() != len(want) {
			t.Fatalf("list holds %d digests, its lines name %d", d.Len(), len(want))
		}
		for sum, label := range want {
			if got, ok := d.lookup(sum); !ok || got != label {
				t.Fatalf("digest %x: lookup = %q, %v; want %q", sum, got, ok, label)
			}
		}
	})
}

// denyModel reads a list that parsed, line by line, as its doc comment
// describes it.
func denyModel(t *testing.T, in string) map[[32]byte]string {
	want := map[[32]byte]string{}
	for line := range strings.Lines(in) {
		entry, label, _ := strings.Cut(line, "#")
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		var sum [32]byte
		if n, err := hex.Decode(sum[:], []byte(entry)); err != nil || n != 32 || len(entry) != 64 {
			t.Fatalf("list parsed with a line that is not a digest: %q", line)
		}
		want[sum] = strings.TrimSpace(label)
	}
	return want
}

// FuzzClamReply: whatever clamd's socket sends back (a compromised or
// impostor clamd controls it), the verdict is clean only for exactly
// "stream: OK", infected only for "stream: NAME FOUND", and otherwise an
// ErrClamdReply that leaves the verdict as it was; the read is bounded.
func FuzzClamReply(f *testing.F) {
	for _, s := range []string{
		"stream: OK\x00",
		"stream: Medsec.Test.Marker FOUND\x00",
		"INSTREAM size limit exceeded. ERROR\x00",
		"stream: Can't allocate memory ERROR\x00",
		"stream: OK",
		"stream:  FOUND\x00",
		"stream: OK\nstream: X FOUND\x00",
		"\x00stream: OK",
		"",
	} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, truncated bool) {
		reply, err := pipeReply(data)
		if err != nil {
			return
		}
		if strings.ContainsRune(reply, 0) || len(reply) > maxClamdReply || reply != strings.TrimSpace(reply) {
			t.Fatalf("reply %q: NUL, over %d bytes, or untrimmed", reply, maxClamdReply)
		}
		in := ClamVerdict{Scanned: int64(len(data)), Truncated: truncated}
		v, err := parseClamReply(in, reply)
		if err != nil {
			if !errors.Is(err, ErrClamdReply) || v != in {
				t.Fatalf("refusal of %q: %+v, %v; want the verdict unchanged and ErrClamdReply", reply, v, err)
			}
			return
		}
		checkVerdict(t, in, v, reply)
	})
}

func checkVerdict(t *testing.T, in, v ClamVerdict, reply string) {
	if v.Scanned != in.Scanned || v.Truncated != in.Truncated {
		t.Fatalf("reply %q changed what was sent: %+v from %+v", reply, v, in)
	}
	clean := !v.Infected && v.Signature == "" && reply == "stream: OK"
	infected := v.Infected && reply == "stream: "+v.Signature+" FOUND"
	if !clean && !infected {
		t.Fatalf("reply %q read as %+v", reply, v)
	}
}

// pipeReply hands data to Clamd.reply as clamd's socket would.
func pipeReply(data []byte) (string, error) {
	server, client := net.Pipe()
	go func() {
		server.Write(data)
		server.Close()
	}()
	defer client.Close()
	return (&Clamd{}).reply(client)
}
