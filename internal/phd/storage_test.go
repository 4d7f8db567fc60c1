package phd

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadingRoundTrip(t *testing.T) {
	for _, m := range sampleMeasurements {
		r := reading(m, FlagAboveLimits)
		r.Components = append([]Component(nil), r.Components...)
		if len(r.Components) > 0 {
			r.Components[0].Flag = FlagAboveLimits
		}
		b, err := EncodeReading(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 160 {
			t.Errorf("%s stores in %d bytes, want a compact form (≤ 160)", r, len(b))
		}
		got, err := DecodeReading(b)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestDecodeReadingRejects(t *testing.T) {
	good, err := EncodeReading(reading(sampleMeasurements[1], 0))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-3],
		"version 2": append([]byte{good[0], 0x02}, good[2:]...),
		"tagged":    append([]byte{0xc0}, good...),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeReading(b)
			wantReason(t, "DecodeReading", err, ReasonMalformed)
		})
	}
}
