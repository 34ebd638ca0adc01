package ban

// ExecForTest runs a statement on the database, to damage it on purpose.
func (s *Store) ExecForTest(q string) error {
	_, err := s.db.Exec(q)
	return err
}
