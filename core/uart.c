/*
 * uart.c - a 16550A serial port.
 *
 * Eight registers at 0x3f8..0x3ff.  The guest writes a byte to THR and we
 * hand it to the console at once, so the transmitter is always empty;
 * bytes typed by the user wait in a small FIFO until the guest reads RBR.
 * The part worth reading is the interrupt logic: the line is high while
 * the guest has enabled an interrupt whose condition holds (data ready,
 * or "transmitter empty" owed since the last THR write or IIR read).
 * Linux probes the chip in loopback mode and by its FIFO bits, so both
 * are modelled.  Nothing here locks: the caller holds the VM's lock.
 */
#include <string.h>

#include "uart.h"

enum {
	REG_RBR_THR = 0, REG_IER = 1, REG_IIR_FCR = 2, REG_LCR = 3,
	REG_MCR = 4, REG_LSR = 5, REG_MSR = 6, REG_SCR = 7,
};

#define IER_RDI   0x01    /* data ready interrupt */
#define IER_THRI  0x02    /* transmitter empty interrupt */
#define IIR_NONE  0x01
#define IIR_THRI  0x02
#define IIR_RDI   0x04
#define IIR_FIFO  0xc0    /* 16550A: FIFOs enabled */
#define LCR_DLAB  0x80
#define MCR_LOOP  0x10
#define LSR_DR    0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02

void uart_init(struct uart *u, void (*tx)(void *, uint8_t), void *opaque)
{
	memset(u, 0, sizeof(*u));
	u->lsr = LSR_THRE | LSR_TEMT;
	u->msr = 0xb0;       /* DCD, DSR, CTS: a cable is plugged in */
	u->dll = 12;         /* 9600 baud, as firmware would leave it */
	u->tx = tx;
	u->opaque = opaque;
}

unsigned uart_rx_room(const struct uart *u)
{
	return UART_FIFO - u->rx_len;
}

unsigned uart_receive(struct uart *u, const uint8_t *buf, unsigned len)
{
	unsigned i;
	for (i = 0; i < len && u->rx_len < UART_FIFO; i++) {
		u->rx[(u->rx_head + u->rx_len) % UART_FIFO] = buf[i];
		u->rx_len++;
	}
	if (u->rx_len)
		u->lsr |= LSR_DR;
	return i;
}

/* Which interrupt, if any, the IIR reports now. */
static uint8_t pending(const struct uart *u)
{
	if ((u->ier & IER_RDI) && u->rx_len)
		return IIR_RDI;
	if ((u->ier & IER_THRI) && u->thr_irq_pending)
		return IIR_THRI;
	return IIR_NONE;
}

int uart_irq_level(const struct uart *u)
{
	/* OUT2 gates the interrupt line on PCs, but Linux sets it; don't
	 * depend on it so that simpler guests get interrupts too. */
	return pending(u) != IIR_NONE;
}

/* In loopback mode, MSR's top bits mirror MCR's outputs. */
static uint8_t loopback_msr(const struct uart *u)
{
	uint8_t m = 0;
	if (u->mcr & 0x01) m |= 0x20;   /* DTR -> DSR */
	if (u->mcr & 0x02) m |= 0x10;   /* RTS -> CTS */
	if (u->mcr & 0x04) m |= 0x40;   /* OUT1 -> RI */
	if (u->mcr & 0x08) m |= 0x80;   /* OUT2 -> DCD */
	return m;
}

uint8_t uart_read(struct uart *u, unsigned reg)
{
	uint8_t v;

	switch (reg & 7) {
	case REG_RBR_THR:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		if (!u->rx_len)
			return 0;
		v = u->rx[u->rx_head];
		u->rx_head = (u->rx_head + 1) % UART_FIFO;
		if (--u->rx_len == 0)
			u->lsr &= ~LSR_DR;
		return v;
	case REG_IER:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case REG_IIR_FCR:
		v = pending(u);
		/* Reading IIR acknowledges a THRE interrupt. */
		if (v == IIR_THRI)
			u->thr_irq_pending = 0;
		return v | ((u->fcr & FCR_ENABLE) ? IIR_FIFO : 0);
	case REG_LCR:
		return u->lcr;
	case REG_MCR:
		return u->mcr;
	case REG_LSR:
		return u->lsr;
	case REG_MSR:
		return (u->mcr & MCR_LOOP) ? loopback_msr(u) : u->msr;
	default:
		return u->scr;
	}
}

void uart_write(struct uart *u, unsigned reg, uint8_t val)
{
	switch (reg & 7) {
	case REG_RBR_THR:
		if (u->lcr & LCR_DLAB) {
			u->dll = val;
			return;
		}
		if (u->mcr & MCR_LOOP)
			uart_receive(u, &val, 1);
		else if (u->tx)
			u->tx(u->opaque, val);
		u->thr_irq_pending = 1;   /* sent at once: empty again */
		return;
	case REG_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = val;
			return;
		}
		/* Enabling THRI while the transmitter is empty owes an
		 * interrupt, which is how Linux kicks its first transmit. */
		if ((val & IER_THRI) && !(u->ier & IER_THRI))
			u->thr_irq_pending = 1;
		u->ier = val & 0x0f;
		return;
	case REG_IIR_FCR:
		u->fcr = val & 0xc9;
		if (val & FCR_CLEAR_RX) {
			u->rx_len = 0;
			u->lsr &= ~LSR_DR;
		}
		return;
	case REG_LCR:
		u->lcr = val;
		return;
	case REG_MCR:
		u->mcr = val & 0x1f;
		return;
	case REG_LSR:
	case REG_MSR:
		return;           /* read-only */
	default:
		u->scr = val;
		return;
	}
}
