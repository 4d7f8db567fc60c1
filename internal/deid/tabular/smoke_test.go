package tabular

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestSmoke(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SMOKE_N"))
	if n == 0 {
		n = 5000
	}
	tab := SyntheticHospital(n, 1)
	secret := make([]byte, 32)
	start, c0 := time.Now(), cpuTime()
	res, err := Anonymize(context.Background(), tab, SyntheticSpec(5, 0.05), secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("wall", time.Since(start), "cpu", cpuTime()-c0)
	for _, l := range res.Explanation {
		t.Log(l)
	}
	t.Logf("%+v", res.Loss)
}
