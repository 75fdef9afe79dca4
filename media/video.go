// Package media is hearth's video gateway plugin: it runs the OpenVidu-compatible
// gateway of media/openvidu (REST at /openvidu/api, signalling at /openvidu, on the
// client-facing --http listener) over the media nodes (the embedded node of
// media/node and every --kms URL, through media/kurento), with time-limited TURN
// credentials from media/turn in every token, and maps MUC rooms (XEP-0045) to
// video sessions (rooms.go).
//
// Protocol references are in shared/protocols/video.md: §1-§4 OpenVidu REST,
// tokens, signalling and webhooks, §7 lifecycle rules, §9 TURN REST credentials.
package media

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-im/hearth/media/kurento"
	"github.com/hearth-im/hearth/media/openvidu"
	"github.com/hearth-im/hearth/media/turn"
	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/storage"
)

// Property keys of the video gateway (DESIGN.md §1 for the first two).
const (
	PropSecret         = "openvidu.secret"
	PropPublicURL      = "http.public-url"
	PropWebhookURL     = "openvidu.webhook.url"
	PropWebhookEvents  = "openvidu.webhook.events"
	PropWebhookHeaders = "openvidu.webhook.headers"
	PropTokenTTL       = "openvidu.token-ttl"
)

// Deps are the running pieces the gateway is built on.
type Deps struct {
	// TURN is the embedded TURN server whose credentials go into tokens; nil if
	// --turn is off.
	TURN *turn.Server
	// TURNHost is the host name clients reach the TURN server at.
	TURNHost func() string
	// MediaNodes returns the Kurento URLs, read at each start: the embedded
	// node's ws://<--media>/kurento and every --kms URL.
	MediaNodes func() []string
	// HTTPURL is the default of http.public-url: where --http listens, as a
	// ws:// URL (see PublicURL).
	HTTPURL func() string
	// Kurento tunes the media node clients; zero is fine.
	Kurento kurento.Options
	// Rooms maps MUC rooms to video sessions; nil leaves the REST API alone.
	Rooms RoomSource
}

// RoomSource is what the gateway needs from the MUC service: rooms.go's
// implementation wraps plugins/muc.
type RoomSource interface {
	// Start subscribes to room events and registers the token IQ; it returns a
	// stop function.
	Start(h *plugins.Host, gw *openvidu.Server) (stop func(), err error)
}

// PublicURL turns a listener address into the URL browsers reach it at: an
// unspecified host (":7070") becomes domain.
func PublicURL(addr net.Addr, domain string) string {
	if addr == nil {
		return "ws://" + domain + ":7070"
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "ws://" + addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = domain
	}
	return "ws://" + net.JoinHostPort(host, port)
}

// Properties are the gateway's property definitions.
func Properties() []storage.PropDef {
	return []storage.PropDef{
		{Key: PropSecret, Help: "password of the OpenVidu REST API, user OPENVIDUAPP (generated)", Secret: true,
			Generate: func() string { return randomSecret() }},
		{Key: PropPublicURL, Help: "URL clients reach --http at (ws://host:port or wss://...); OpenVidu tokens point there; empty: from --http",
			Check: func(v string) error {
				if v == "" {
					return nil
				}
				u, err := url.Parse(v)
				if err != nil || u.Host == "" || (u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https") {
					return fmt.Errorf("want ws://host:port, wss://host, http:// or https://")
				}
				return nil
			}},
		{Key: PropWebhookURL, Help: "URL OpenVidu webhook events are POSTed to; empty: no webhooks",
			Check: func(v string) error {
				if v == "" {
					return nil
				}
				if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return fmt.Errorf("want an http(s) URL")
				}
				return nil
			}},
		{Key: PropWebhookEvents, Help: "comma-separated webhook events to send (sessionCreated, sessionDestroyed, participantJoined, participantLeft, webrtcConnectionCreated, webrtcConnectionDestroyed, signalSent); empty: all"},
		{Key: PropWebhookHeaders, Help: `extra webhook request headers, a JSON array of "Name: value" strings`,
			Check: func(v string) error {
				if v == "" {
					return nil
				}
				var hs []string
				if err := json.Unmarshal([]byte(v), &hs); err != nil {
					return fmt.Errorf(`want a JSON array of "Name: value" strings: %v`, err)
				}
				return nil
			}},
		{Key: PropTokenTTL, Default: "1h", Help: "how long an unused OpenVidu token stays valid", Check: storage.CheckDuration},
	}
}

// Plugin describes the video gateway plugin.
func Plugin(d Deps) plugins.Info {
	return plugins.Info{
		Name:  "video",
		Help:  "OpenVidu-compatible video gateway (REST /openvidu/api, signalling /openvidu) with MUC rooms as video sessions",
		Props: Properties(),
		New:   func() plugins.Plugin { return &video{deps: d} },
	}
}

type video struct {
	deps  Deps
	gw    *openvidu.Server
	rooms func()
}

// Start runs the gateway and mounts its routes on --http.
func (v *video) Start(h *plugins.Host) error {
	props, d := h.Props, v.deps
	cfg := openvidu.Config{
		Log:     h.Log,
		Secret:  func() string { return props.Get(PropSecret) },
		Kurento: d.Kurento,
		PublicURL: func() string {
			if u := props.Get(PropPublicURL); u != "" {
				return u
			}
			if d.HTTPURL != nil {
				return d.HTTPURL()
			}
			return ""
		},
		TokenTTL: func() time.Duration { return props.Duration(PropTokenTTL) },
		Webhook: func() openvidu.WebhookConfig {
			c := openvidu.WebhookConfig{URL: props.Get(PropWebhookURL)}
			for _, e := range strings.Split(props.Get(PropWebhookEvents), ",") {
				if e = strings.TrimSpace(e); e != "" {
					c.Events = append(c.Events, e)
				}
			}
			if hs := props.Get(PropWebhookHeaders); hs != "" {
				_ = json.Unmarshal([]byte(hs), &c.Headers)
			}
			return c
		},
	}
	if d.TURN != nil {
		cfg.TURN = func(user string) (openvidu.TURNCredentials, bool) {
			c := d.TURN.Credentials(user)
			udp, _ := d.TURN.Addr()
			_, p, _ := net.SplitHostPort(udp.String())
			port, _ := strconv.Atoi(p)
			host := ""
			if d.TURNHost != nil {
				host = d.TURNHost()
			}
			return openvidu.TURNCredentials{Host: host, Port: port, Username: c.Username, Password: c.Password, Expires: c.Expires}, true
		}
	}
	if d.MediaNodes != nil {
		cfg.MediaNodes = d.MediaNodes()
	}
	v.gw = openvidu.New(cfg)
	h.HandleHTTP(false, "/openvidu/api/", v.gw.APIHandler())
	h.HandleHTTP(false, "/openvidu", v.gw.SignalHandler())
	if d.Rooms != nil {
		stop, err := d.Rooms.Start(h, v.gw)
		if err != nil {
			v.Stop()
			return err
		}
		v.rooms = stop
	}
	return nil
}

// Stop ends every session (openviduServerStopped) and disconnects from the nodes.
func (v *video) Stop() error {
	if v.rooms != nil {
		v.rooms()
	}
	if v.gw == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return v.gw.Close(ctx)
}

var (
	_ plugins.Plugin  = (*video)(nil)
	_ plugins.Stopper = (*video)(nil)
)

// randomSecret makes a generated property value: 32 random bytes, URL-safe.
func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
