package listflag_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cosmic-horizons/events/examples/internal/listflag"
)

func TestSplit(t *testing.T) {
	assert.Nil(t, listflag.Split(""))
	assert.Nil(t, listflag.Split(" , ,"))
	assert.Equal(t, []string{"a", "b"}, listflag.Split(" a, ,b "))
	assert.Equal(t, []string{"amqp://h1/", "amqp://h2/"}, listflag.Split("amqp://h1/,amqp://h2/,"))
}
