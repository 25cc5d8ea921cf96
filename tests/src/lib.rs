//! Test harness shared by the end-to-end tests: starts real services on loopback
//! (a CNCF distribution registry) and pushes synthetic release images into them.
