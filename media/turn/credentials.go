package turn

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the coturn REST scheme is defined with HMAC-SHA1
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Credentials are time-limited TURN credentials in the coturn "use-auth-secret" form
// (draft-uberti-behave-turn-rest-00): Username is "<expiry as Unix seconds>:<user>" and
// Password is base64(HMAC-SHA1(secret, Username)). Hand Username and Password to clients in
// separate fields (XEP-0215 attributes, RTCIceServer username/credential): the ':' inside the
// username breaks "user:pass@host" URLs.
type Credentials struct {
	Username string
	Password string
	Expires  time.Time
}

// Mint returns credentials for user that expire ttl after now. The server accepts them until
// the expiry second has passed, as coturn does.
func Mint(secret, user string, ttl time.Duration, now time.Time) Credentials {
	expiry := now.Add(ttl).Unix()
	username := strconv.FormatInt(expiry, 10) + ":" + user
	return Credentials{
		Username: username,
		Password: restPassword(secret, username),
		Expires:  time.Unix(expiry, 0),
	}
}

// restPassword is the password of the REST scheme for username: the HMAC-SHA1 of the whole
// username (expiry included) keyed with the shared secret, in standard padded base64.
func restPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username)) // hash.Hash writes never fail
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

var errMalformedUsername = errors.New("username is not <expiry>:<user>")

// parseUsername splits a REST username at its first ':' into the expiry and the user. The user
// part may itself contain ':' (a JID with an IPv6 literal domain), unlike pion's
// LongTermTURNRESTAuthHandler, which keeps only the second field.
func parseUsername(username string) (expiry time.Time, user string, err error) {
	i := strings.IndexByte(username, ':')
	if i <= 0 || i == len(username)-1 {
		return time.Time{}, "", errMalformedUsername
	}
	secs, err := strconv.ParseInt(username[:i], 10, 64)
	if err != nil || secs < 0 {
		return time.Time{}, "", fmt.Errorf("%w: bad expiry %q", errMalformedUsername, username[:i])
	}
	return time.Unix(secs, 0), username[i+1:], nil
}
