package ctxcall_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cosmic-horizons/events/internal/ctxcall"
)

func TestDoReturnsTheResult(t *testing.T) {
	v, err := ctxcall.Do(context.Background(), func() (int, error) { return 7, nil })
	if v != 7 || err != nil {
		t.Fatalf("Do = %d, %v; want 7, nil", v, err)
	}
	boom := errors.New("boom")
	if _, err := ctxcall.Do(context.Background(), func() (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("Do = %v, want fn's error", err)
	}
}

func TestDoReturnsWhenCtxEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	go func() { <-started; cancel() }()
	_, err := ctxcall.Do(ctx, func() (int, error) { close(started); <-release; return 1, nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want context.Canceled while fn blocks", err)
	}
}
