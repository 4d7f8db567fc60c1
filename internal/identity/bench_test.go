package identity

import (
	"context"
	"testing"

	"github.com/medsec/medsec/internal/store/storetest"
)

// BenchmarkLogin is one password sign-in at the production argon2id cost
// (m=19 MiB, t=2): look-up, hash check, session and audit event committed
// together. SQLite.
func BenchmarkLogin(b *testing.B) {
	f := newFixture(b, storetest.OpenSQLite(b))
	f.dir.HashParams = DefaultHash
	f.person(b, "bench.nurse", RoleNurse)
	r := LoginRequest{Username: "bench.nurse", Password: passwordFor("bench.nurse"), Source: "192.0.2.1"}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := f.dir.Login(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionAuthenticate is the per-request cost of a bearer token:
// parse, SHA-256, one indexed read of session and account. SQLite.
func BenchmarkSessionAuthenticate(b *testing.B) {
	f := newFixture(b, storetest.OpenSQLite(b))
	f.person(b, "bench.doc", RolePhysician)
	_, token := f.login(b, LoginRequest{Username: "bench.doc", Password: passwordFor("bench.doc")})
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.dir.Sessions.Authenticate(ctx, token, "192.0.2.1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionAuthenticateParallel is the same from many goroutines
// (the read pool serves them concurrently).
func BenchmarkSessionAuthenticateParallel(b *testing.B) {
	f := newFixture(b, storetest.OpenSQLite(b))
	f.person(b, "bench.doc", RolePhysician)
	_, token := f.login(b, LoginRequest{Username: "bench.doc", Password: passwordFor("bench.doc")})
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.dir.Sessions.Authenticate(ctx, token, "192.0.2.1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkParseToken is the token parser alone.
func BenchmarkParseToken(b *testing.B) {
	_, token := newToken()
	for b.Loop() {
		if _, err := ParseToken(token); err != nil {
			b.Fatal(err)
		}
	}
}
