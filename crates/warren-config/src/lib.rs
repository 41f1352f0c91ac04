//! warren-config
