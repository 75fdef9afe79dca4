package kurento

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Kurento error codes (KMS module-core KurentoException.hpp, video.md §5.5) and the
// JSON-RPC 2.0 codes a server may use for malformed requests.
const (
	CodeMarshallError                  = 40001
	CodeUnexpectedError                = 40003
	CodeConnectError                   = 40004
	CodeUnsupportedMediaType           = 40005
	CodeNotImplemented                 = 40006
	CodeInvalidSession                 = 40007
	CodeMalformedTransaction           = 40008
	CodeNotEnoughResources             = 40009
	CodeMediaObjectTypeNotFound        = 40100
	CodeMediaObjectNotFound            = 40101
	CodeMediaObjectConstructorNotFound = 40104
	CodeMediaObjectMethodNotFound      = 40105
	CodeMediaObjectEventNotSupported   = 40106
	CodeMediaObjectIllegalParamError   = 40107
	CodeMediaObjectNotAvailable        = 40108
	CodeSDPCreateError                 = 40200
	CodeSDPParseError                  = 40201
	CodeSDPEndPointProcessOfferError   = 40205
	CodeSDPEndPointProcessAnswerError  = 40206
	CodeSDPEndPointAlreadyNegotiated   = 40208
	CodeICEGatherCandidatesError       = 40400
	CodeICEAddCandidateError           = 40401
	CodeServerManagerErrorKMDNotFound  = 40500
	CodeInvalidParams                  = -32602
	CodeMethodNotFound                 = -32601
)

// Error is an error response from the media server: the JSON-RPC error object
// {"code", "message", "data"}. Kurento puts the symbolic name of the code into
// data.type (e.g. "MEDIA_OBJECT_NOT_FOUND"); it is copied into Type.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
	// Type is data.type when the server sent one.
	Type string `json:"-"`
}

func (e *Error) Error() string {
	if e.Type != "" {
		return fmt.Sprintf("kurento error %d (%s): %s", e.Code, e.Type, e.Message)
	}
	return fmt.Sprintf("kurento error %d: %s", e.Code, e.Message)
}

// UnmarshalJSON decodes the error object and lifts data.type into Type.
func (e *Error) UnmarshalJSON(b []byte) error {
	type plain Error
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*e = Error(p)
	var data struct {
		Type string `json:"type"`
	}
	if len(e.Data) > 0 && json.Unmarshal(e.Data, &data) == nil {
		e.Type = data.Type
	}
	return nil
}

// HasCode reports whether err is, or wraps, a server error with the given code,
// e.g. HasCode(err, CodeMediaObjectNotFound).
func HasCode(err error, code int) bool {
	var ke *Error
	return errors.As(err, &ke) && ke.Code == code
}

var (
	// ErrClosed is returned by requests on a client that Close has been called on.
	ErrClosed = errors.New("kurento: client closed")
	// ErrConnectionLost is returned by a request whose WebSocket dropped before the
	// answer came. The server may or may not have executed it.
	ErrConnectionLost = errors.New("kurento: connection lost")
	// ErrServerLost is what Err returns (wrapped with the cause) once the media server
	// is gone for good: reconnection was off, gave up, or the server no longer knows
	// the session (objects are gone).
	ErrServerLost = errors.New("kurento: media server lost")
)
