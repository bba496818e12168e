/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Included by the kernel's task local data selftest, which uses nothing of it. */
