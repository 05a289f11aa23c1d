/*
 * uart.h - an 8250/16550A serial port, the first console every x86
 * kernel knows.  See uart.c.
 */
#ifndef VMLUA_UART_H
#define VMLUA_UART_H

#include <stdint.h>

#define UART_FIFO 64

struct uart {
	uint8_t ier, iir_fifo, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	int thr_irq_pending;            /* THRE interrupt owed to the guest */
	uint8_t rx[UART_FIFO];          /* bytes waiting for the guest */
	unsigned rx_head, rx_len;
	/* Where transmitted bytes go; called with the caller's lock held. */
	void (*tx)(void *opaque, uint8_t byte);
	void *opaque;
};

void uart_init(struct uart *u, void (*tx)(void *, uint8_t), void *opaque);

/* A guest access to register `reg` (0..7).  Returns the value read. */
uint8_t uart_read(struct uart *u, unsigned reg);
void uart_write(struct uart *u, unsigned reg, uint8_t val);

/* Queue bytes for the guest; returns how many fit. */
unsigned uart_receive(struct uart *u, const uint8_t *buf, unsigned len);

/* Free room in the receive FIFO. */
unsigned uart_rx_room(const struct uart *u);

/* Is the interrupt line raised? */
int uart_irq_level(const struct uart *u);

#endif
