package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"time"
)

const certLifetime = 24 * time.Hour // a test server's certificate outlives any run and no more

// selfSignedTLS makes a loopback certificate in memory: the server's tls.Config, and a client
// tls.Config trusting exactly that certificate, for the service's calls to itself.
func selfSignedTLS() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "orders (self-signed)"},
		NotBefore:             now.Add(-time.Minute), // clocks of a test machine may disagree by seconds
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
	}
	return server, &tls.Config{RootCAs: roots}, nil
}

// serveHTTP1OverTLS keeps the server on HTTP/1.1: one connection per client, as the probes hold
// them (h2 would multiplex the service's calls to itself over one connection). An empty
// TLSNextProto is how every Go version since 1.6 spells "no HTTP/2".
func serveHTTP1OverTLS(srv *http.Server, server *tls.Config) {
	srv.TLSConfig = server
	srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
}

// trustSelf makes the default client (the leaky handlers' http.Get) trust the service's own
// certificate and speak HTTP/1.1 to it.
func trustSelf(client *tls.Config) {
	transport := http.DefaultTransport.(*http.Transport)
	transport.TLSClientConfig = client
	transport.ForceAttemptHTTP2 = false
}
