package bus

import (
	"context"
	"testing"
)

// TestDeliveriesRecord: a delivery recorded under a key is found, with an
// empty value (the record is the key), and no other key is.
func TestDeliveriesRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, err := openBus(t, testConfig(t)).Deliveries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check := func(key string, want bool) {
		t.Helper()
		got, err := d.Delivered(ctx, key)
		if err != nil || got != want {
			t.Fatalf("Delivered(%q) = %v, %v; want %v", key, got, err, want)
		}
	}
	check("file.f1", false)
	if err := d.Record(ctx, "file.f1"); err != nil {
		t.Fatal(err)
	}
	check("file.f1", true)
	check("file.f2", false)
	e, err := d.kv.Get(ctx, "file.f1")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Value()) != 0 {
		t.Fatalf("record value is %q, want empty", e.Value())
	}
}
