// Package storage is a temporary stand-in for github.com/hearth-im/hearth/storage,
// which is being written in parallel; it is deleted once that package compiles.
package storage

import "errors"

// ErrNotFound mirrors storage.ErrNotFound.
var ErrNotFound = errors.New("storage: not found")

// Credential mirrors storage.Credential.
type Credential struct {
	Hash       string
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}
