package benchcore

import (
	"slices"
	"testing"
)

func TestCmpOffered(t *testing.T) {
	rates := []float64{0, 5000, 1000, 100000, 0, 2000}
	slices.SortStableFunc(rates, cmpOffered)
	if want := []float64{1000, 2000, 5000, 100000, 0, 0}; !slices.Equal(rates, want) {
		t.Errorf("sorted = %v, want %v", rates, want)
	}
}
