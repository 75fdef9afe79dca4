package roster_test

import (
	"testing"

	"github.com/hearth-im/hearth/roster"
	"github.com/hearth-im/hearth/roster/rostertest"
)

func TestMemStore(t *testing.T) {
	rostertest.Run(t, func(t *testing.T, owners []string, maxTombstones int) roster.Store {
		return roster.NewMemStore(maxTombstones)
	})
}
