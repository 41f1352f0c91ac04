//! warren-knownhosts
