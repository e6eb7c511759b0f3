//! recoverydesk: a support desk for account recovery whose recovery policy is enforced in code.

pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod error;
pub mod files;
pub mod mail;
pub mod mailgate;
pub mod priority;
pub mod services;
pub mod socket;
pub mod startup;
pub mod telemetry;
pub mod web;
