package devices

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/medsec/medsec/internal/phd/device"
)

// FuzzGatewayCSR: a gateway's certificate request from the network never
// panics the parser; every refusal is ErrBadRequest, and an accepted
// request names a valid gateway with a usable key and a host.
func FuzzGatewayCSR(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, _ := CreateGatewayCSR(key, "gw-ward5", []string{"127.0.0.1", "gw.example"})
	deviceCSR, _ := device.CreateCSR(key, "SN-1", "HEM-9200T")
	for _, seed := range [][]byte{good, deviceCSR, good[:len(good)/2], {0x30, 0x00}, {}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		req, err := parseGatewayCSR(der)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("refusal is not ErrBadRequest: %v", err)
			}
			return
		}
		if req.kind != KindGateway || checkLabel("name", req.serial) != nil || !acceptedKey(req.pub) || len(req.dns)+len(req.ips) == 0 {
			t.Fatalf("accepted an invalid request: %+v", req)
		}
	})
}
