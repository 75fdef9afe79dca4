package openvidu

import (
	"crypto/rand"
	"regexp"
	"strings"
)

const (
	letters  = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	alphanum = letters + "0123456789"
)

// randomID returns prefix + one upper-case letter + n alphanumerics, the shape of
// OpenVidu's ids (video.md §1.2): ses_YnDaGYNcd7, con_Xnxg19tonh, tok_AVe8o7iltWqtijyl.
// The letter keeps ids from starting with a digit; crypto/rand keeps token keys,
// which are bearer secrets, unguessable.
func randomID(prefix string, n int) string {
	b := make([]byte, 1+n)
	rand.Read(b) // never fails (Go 1.24+)
	out := make([]byte, 0, len(prefix)+1+n)
	out = append(out, prefix...)
	out = append(out, letters[26+int(b[0])%26])
	for _, c := range b[1:] {
		// 256 % 62 != 0 skews the distribution slightly; with 15 characters the
		// token key still has far more than 80 bits of entropy.
		out = append(out, alphanum[int(c)%len(alphanum)])
	}
	return string(out)
}

func newSessionID() string    { return randomID("ses_", 9) }
func newConnectionID() string { return randomID("con_", 9) }
func newTokenKey() string     { return randomID("tok_", 15) }

// newStreamID builds OpenVidu's stream id (KurentoParticipant.generateStreamId):
// str_ + the first three letters of typeOfVideo (MIC without video) + _ + four random
// characters + _ + the publisher's connection id, so the publisher can be recovered
// from the stream id alone (publisherOf).
func newStreamID(connectionID string, hasVideo bool, typeOfVideo string) string {
	kind := "MIC"
	if hasVideo {
		kind = "CAM"
		if len(typeOfVideo) >= 3 {
			kind = strings.ToUpper(typeOfVideo[:3])
		}
	}
	return randomID("str_"+kind+"_", 3) + "_" + connectionID
}

// publisherOf returns the connection id inside a stream id (RpcHandler
// parseSenderPublicIdFromStreamId: everything from the last "con_").
func publisherOf(streamID string) string {
	i := strings.LastIndex(streamID, "con_")
	if i < 0 {
		return ""
	}
	return streamID[i:]
}

var customSessionIDRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// ValidSessionID reports whether id may name a session: OpenVidu's rule for
// customSessionId (SessionProperties.isValidCustomSessionId), which also keeps ids
// safe in URLs and in the naive query split of openvidu-browser (video.md §2.2).
func ValidSessionID(id string) bool { return len(id) <= 256 && customSessionIDRe.MatchString(id) }
