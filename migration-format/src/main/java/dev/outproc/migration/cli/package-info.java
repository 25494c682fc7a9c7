/** Command-line tool. */ package dev.outproc.migration.cli;
