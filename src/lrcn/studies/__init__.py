"""Small experiments for students: runnable studies that print numbers and draw plots."""
